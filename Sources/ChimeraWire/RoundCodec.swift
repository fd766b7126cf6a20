public import ZeroMQ

/// The parameter server's two per-round messages — a `GradientPush` with its update and the `Weights`
/// reply — encoded and decoded by hand, byte for byte as the generated protobuf code does it.
///
/// Why: a round is a few microseconds of arithmetic, so the generic path (protobuf visitors, a
/// `WireMessage` with its arrays and strings) was most of the master's and workers' CPU per round.
/// The decoders accept only the plain canonical shape of these messages and return nil for anything
/// else (other bodies, unknown or repeated fields, a non-finite value, a size mismatch); callers then
/// take the generic `WireCodec` path, which owns every error message. So this is a shortcut, never a
/// second definition of the protocol.
public enum RoundCodec {
    /// A decoded round message: its body, request id and its one float32 `[outputs, stride]` tensor
    /// (finite, read in place from the received frame).
    public struct Message<Body> {
        public var requestID: UInt64
        public var body: Body
        public var tensor: Tensor
    }

    // MARK: Encoding

    /// The frames of a `GradientPush` carrying `update` (named "delta" when `push.isDelta`, else
    /// "gradient"), float32 `[outputs, stride]`.
    public static func encode(
        _ push: Chimera_V1_GradientPush, requestID: UInt64, update: UnsafeBufferPointer<Float>, outputs: Int,
        stride: Int
    ) throws -> [Frame] {
        try frames(
            control: control(push, requestID: requestID, outputs: outputs, stride: stride),
            tensor: UnsafeRawBufferPointer(update),
            outputs: outputs, stride: stride)
    }

    /// The frames of a `Weights` reply carrying `weights`, float32 `[outputs, stride]`.
    public static func encode(
        _ header: Chimera_V1_Weights, requestID: UInt64, weights: UnsafeBufferPointer<Float>, outputs: Int, stride: Int
    ) throws -> [Frame] {
        try frames(
            control: control(header, requestID: requestID, outputs: outputs, stride: stride),
            tensor: UnsafeRawBufferPointer(weights), outputs: outputs, stride: stride)
    }

    /// Sends what `encode` makes for a push as the rest of a message on `socket` (after any routing
    /// envelope the caller sent), copying straight from `update`: no frame objects. Returns the bytes sent.
    @discardableResult
    public static func send(
        _ push: Chimera_V1_GradientPush, requestID: UInt64, update: UnsafeBufferPointer<Float>, outputs: Int,
        stride: Int,
        on socket: Socket
    ) throws -> Int {
        try send(
            control: control(push, requestID: requestID, outputs: outputs, stride: stride),
            tensor: UnsafeRawBufferPointer(update),
            outputs: outputs, stride: stride, on: socket)
    }

    /// Sends what `encode` makes for a `Weights` reply, as `send` does for a push.
    @discardableResult
    public static func send(
        _ header: Chimera_V1_Weights, requestID: UInt64, weights: UnsafeBufferPointer<Float>, outputs: Int, stride: Int,
        on socket: Socket
    ) throws -> Int {
        try send(
            control: control(header, requestID: requestID, outputs: outputs, stride: stride),
            tensor: UnsafeRawBufferPointer(weights), outputs: outputs, stride: stride, on: socket)
    }

    private static func control(_ push: Chimera_V1_GradientPush, requestID: UInt64, outputs: Int, stride: Int)
        -> [UInt8]
    {
        var writer = ProtoWriter()
        writer.varintField(1, requestID)
        writeSpec(&writer, name: push.isDelta ? "delta" : "gradient", outputs: outputs, stride: stride)
        writer.nested(13) { body in
            body.varintField(1, UInt64(push.workerID))
            body.varintField(2, push.jobID)
            body.varintField(3, push.clock)
            body.varintField(4, push.rows)
            body.doubleField(5, push.loss)
            body.varintField(6, push.isDelta ? 1 : 0)
            body.varintField(7, push.thenPull ? 1 : 0)
            body.fixed64Field(8, push.session)
        }
        return writer.bytes
    }

    private static func control(_ header: Chimera_V1_Weights, requestID: UInt64, outputs: Int, stride: Int) -> [UInt8] {
        var writer = ProtoWriter()
        writer.varintField(1, requestID)
        writeSpec(&writer, name: "weights", outputs: outputs, stride: stride)
        writer.nested(24) { body in
            body.varintField(1, header.jobID)
            body.varintField(2, header.version)
            body.varintField(3, header.minClock)
            body.varintField(4, header.done ? 1 : 0)
        }
        return writer.bytes
    }

    private static let protocolFrameBytes = WireCodec.protocolFrame

    private static func frames(control: [UInt8], tensor: UnsafeRawBufferPointer, outputs: Int, stride: Int) throws
        -> [Frame]
    {
        precondition(tensor.count == outputs * stride * 4, "tensor does not hold \(outputs) × \(stride) floats")
        let header = try protocolFrameBytes.withUnsafeBytes { try Frame(copying: $0) }
        let controlFrame = try control.withUnsafeBytes { try Frame(copying: $0) }
        return [header, controlFrame, try Frame(copying: tensor)]
    }

    private static func send(
        control: [UInt8], tensor: UnsafeRawBufferPointer, outputs: Int, stride: Int, on socket: Socket
    ) throws -> Int {
        precondition(tensor.count == outputs * stride * 4, "tensor does not hold \(outputs) × \(stride) floats")
        try protocolFrameBytes.withUnsafeBytes { try socket.send(copying: $0, more: true) }
        try control.withUnsafeBytes { try socket.send(copying: $0, more: true) }
        try socket.send(copying: tensor)
        return protocolFrameBytes.count + control.count + tensor.count
    }

    private static func writeSpec(_ writer: inout ProtoWriter, name: StaticString, outputs: Int, stride: Int) {
        writer.nested(2) { spec in
            spec.string(1, name)
            spec.varintField(2, UInt64(DType.float32.wire.rawValue))
            spec.nested(3) { shape in
                shape.varint(UInt64(outputs))
                shape.varint(UInt64(stride))
            }
        }
    }

    // MARK: Decoding

    /// A `GradientPush` in its plain form (`[protocol] [control] [tensor]`), or nil: use `WireCodec`.
    public static func decodePush(_ frames: ArraySlice<Frame>) -> Message<Chimera_V1_GradientPush>? {
        guard let parts = split(frames, bodyField: 13), case .push(let push) = parts.body,
            parts.name == (push.isDelta ? "delta" : "gradient"), let tensor = tensor(parts.shape, parts.frame)
        else { return nil }
        return Message(requestID: parts.requestID, body: push, tensor: tensor)
    }

    /// A `Weights` reply with its tensor, or nil: use `WireCodec`.
    public static func decodeWeights(_ frames: ArraySlice<Frame>) -> Message<Chimera_V1_Weights>? {
        guard let parts = split(frames, bodyField: 24), case .weights(let weights) = parts.body,
            parts.name == "weights",
            let tensor = tensor(parts.shape, parts.frame)
        else { return nil }
        return Message(requestID: parts.requestID, body: weights, tensor: tensor)
    }

    private static func tensor(_ shape: (Int, Int), _ frame: Frame) -> Tensor? {
        // Both dimensions are below 2^31 (readSpec), so the byte count cannot overflow.
        guard frame.count == shape.0 * shape.1 * 4 else { return nil }
        let tensor = Tensor(dtype: .float32, shape: [shape.0, shape.1], frame: frame)
        return firstNonFinite(tensor) == nil ? tensor : nil
    }

    private enum Body {
        case push(Chimera_V1_GradientPush)
        case weights(Chimera_V1_Weights)
    }

    private struct Parts {
        var requestID: UInt64
        var body: Body
        var name: String
        var shape: (Int, Int)
        var frame: Frame
    }

    /// The control frame's request id, tensor spec and body (field 13: push, 24: weights). Not generic
    /// on purpose: this runs for every message of a round.
    private static func split(_ frames: ArraySlice<Frame>, bodyField: Int) -> Parts? {
        guard frames.count == 3 else { return nil }
        let first = frames.startIndex
        guard frames[first].contentEquals(protocolFrameBytes) else { return nil }
        return frames[first + 1].withUnsafeBytes { raw -> Parts? in
            var reader = ProtoReader(raw)
            var requestID: UInt64?
            var spec: (String, (Int, Int))?
            var body: Body?
            while !reader.atEnd {
                guard let (number, wireType) = reader.field() else { return nil }
                switch (number, wireType) {
                case (1, 0) where requestID == nil:
                    guard let value = reader.varint() else { return nil }
                    requestID = value
                case (2, 2) where spec == nil:
                    guard let bytes = reader.lengthDelimited(), let value = readSpec(bytes) else { return nil }
                    spec = value
                case (bodyField, 2) where body == nil:
                    guard let bytes = reader.lengthDelimited() else { return nil }
                    var inner = ProtoReader(bytes)
                    if bodyField == 13 {
                        guard let push = readPush(&inner) else { return nil }
                        body = .push(push)
                    } else {
                        guard let weights = readWeights(&inner) else { return nil }
                        body = .weights(weights)
                    }
                default:
                    return nil
                }
            }
            guard let spec, let body else { return nil }
            return Parts(requestID: requestID ?? 0, body: body, name: spec.0, shape: spec.1, frame: frames[first + 2])
        }
    }

    /// A TensorSpec naming a float32 tensor of two dimensions (packed shape), or nil.
    private static func readSpec(_ bytes: UnsafeRawBufferPointer) -> (String, (Int, Int))? {
        var reader = ProtoReader(bytes)
        var name: String?
        var dtype: UInt64?
        var shape: (UInt64, UInt64)?
        while !reader.atEnd {
            guard let (number, wireType) = reader.field() else { return nil }
            switch (number, wireType) {
            case (1, 2) where name == nil:
                guard let text = reader.lengthDelimited(), text.count <= 16 else { return nil }
                name = String(decoding: text, as: UTF8.self)
            case (2, 0) where dtype == nil:
                dtype = reader.varint()
                if dtype == nil { return nil }
            case (3, 2) where shape == nil:
                guard let packed = reader.lengthDelimited() else { return nil }
                var inner = ProtoReader(packed)
                guard let rows = inner.varint(), let columns = inner.varint(), inner.atEnd else { return nil }
                shape = (rows, columns)
            default:
                return nil
            }
        }
        guard let name, dtype == UInt64(DType.float32.wire.rawValue), let shape,
            shape.0 <= UInt64(Int32.max), shape.1 <= UInt64(Int32.max)
        else { return nil }
        return (name, (Int(shape.0), Int(shape.1)))
    }

    private static func readPush(_ reader: inout ProtoReader) -> Chimera_V1_GradientPush? {
        var push = Chimera_V1_GradientPush()
        var seen = 0
        while !reader.atEnd {
            guard let (number, wireType) = reader.field(), number <= 8, seen & (1 << number) == 0 else { return nil }
            seen |= 1 << number
            if number == 5 || number == 8 {
                guard wireType == 1, let bits = reader.fixed64() else { return nil }
                if number == 5 { push.loss = Double(bitPattern: bits) } else { push.session = bits }
                continue
            }
            guard wireType == 0, let value = reader.varint() else { return nil }
            switch number {
            case 1:
                guard value <= UInt64(UInt32.max) else { return nil }
                push.workerID = UInt32(value)
            case 2: push.jobID = value
            case 3: push.clock = value
            case 4: push.rows = value
            case 6, 7:
                guard value <= 1 else { return nil }
                if number == 6 { push.isDelta = value == 1 } else { push.thenPull = value == 1 }
            default: return nil
            }
        }
        return push
    }

    private static func readWeights(_ reader: inout ProtoReader) -> Chimera_V1_Weights? {
        var weights = Chimera_V1_Weights()
        var seen = 0
        while !reader.atEnd {
            guard let (number, wireType) = reader.field(), (1...4).contains(number), wireType == 0,
                seen & (1 << number) == 0,
                let value = reader.varint()
            else { return nil }
            seen |= 1 << number
            switch number {
            case 1: weights.jobID = value
            case 2: weights.version = value
            case 3: weights.minClock = value
            default:
                guard value <= 1 else { return nil }
                weights.done = value == 1
            }
        }
        return weights
    }
}
