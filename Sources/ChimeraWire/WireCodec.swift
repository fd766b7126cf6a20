import SwiftProtobuf
public import ZeroMQ

/// Limits the decoder enforces; anything beyond them is rejected before it is read.
public struct WireLimits: Sendable, Hashable {
    /// Largest tensor frame in bytes (chunk larger tensors).
    public var maxFrameBytes: Int
    /// Largest control frame in bytes.
    public var maxControlBytes: Int
    /// Most tensor frames in one message.
    public var maxTensors: Int

    public init(maxFrameBytes: Int = 1 << 30, maxControlBytes: Int = 16 << 20, maxTensors: Int = 4096) {
        self.maxFrameBytes = maxFrameBytes
        self.maxControlBytes = maxControlBytes
        self.maxTensors = maxTensors
    }

    public static let `default` = WireLimits()
}

/// Encodes and strictly decodes Chimera messages: `[protocol frame] [control] [tensor]*`.
public enum WireCodec {
    /// The first frame of every message: ASCII "CHIMERA" then the version byte.
    public static let magic: [UInt8] = Array("CHIMERA".utf8)
    public static let version: UInt8 = 1
    public static var protocolFrame: [UInt8] { magic + [version] }
    /// Tensors at least this large are sent without copying.
    public static let zeroCopyThreshold = 64 << 10

    // MARK: Encoding

    /// The frames of `message`, ready for `Socket.send(_:)`. Owned tensors ≥ 64 KiB are not copied.
    public static func encode(_ message: WireMessage) throws -> [Frame] {
        var control = message.control
        control.tensors = message.tensors.map { named in
            var spec = Chimera_V1_TensorSpec()
            spec.name = named.name
            spec.dtype = named.tensor.dtype.wire
            spec.shape = named.tensor.shape.map { UInt64($0) }
            return spec
        }
        var frames = [try Frame(protocolFrame), try Frame(try control.serializedBytes() as [UInt8])]
        frames.reserveCapacity(2 + message.tensors.count)
        for named in message.tensors {
            frames.append(try named.tensor.frame(zeroCopyThreshold: zeroCopyThreshold))
        }
        return frames
    }

    // MARK: Decoding

    /// Decodes the frames of one message (after any routing envelope). Every defect is a `WireError`.
    public static func decode(_ frames: some Collection<Frame>, limits: WireLimits = .default) throws(WireError)
        -> WireMessage
    {
        var iterator = frames.makeIterator()
        guard let header = iterator.next() else { throw WireError(.missingFrames, "empty message") }
        try checkProtocolFrame(header)
        guard let controlFrame = iterator.next() else {
            throw WireError(.missingFrames, "no control frame after the protocol frame")
        }
        guard controlFrame.count <= limits.maxControlBytes else {
            throw WireError(
                .frameTooLarge, "control frame is \(controlFrame.count) bytes, limit \(limits.maxControlBytes)")
        }
        let control: Control
        do {
            control = try Control(serializedBytes: controlFrame.bytes)
        } catch {
            throw WireError(.malformedControl, "control frame is not a chimera.v1.Control: \(error)")
        }
        guard let body = control.body else {
            throw WireError(.missingBody, "control frame sets none of the body fields")
        }
        let tensorFrames = frames.count - 2
        guard control.tensors.count == tensorFrames else {
            throw WireError(
                .frameCountMismatch,
                "\(body.kindName) declares \(control.tensors.count) tensors but \(tensorFrames) tensor frames follow")
        }
        guard tensorFrames <= limits.maxTensors else {
            throw WireError(.frameCountMismatch, "\(tensorFrames) tensor frames, limit \(limits.maxTensors)")
        }
        var tensors: [NamedTensor] = []
        tensors.reserveCapacity(tensorFrames)
        for spec in control.tensors {
            let frame = iterator.next()!
            let tensor = try decodeTensor(spec, frame: frame, limits: limits)
            if body.requiresFiniteTensors, let index = firstNonFinite(tensor) {
                throw WireError(
                    .nonFinite, "tensor \"\(spec.name)\" of \(body.kindName) has a non-finite value at index \(index)")
            }
            tensors.append(NamedTensor(spec.name, tensor))
        }
        return WireMessage(control: control, tensors: tensors)
    }

    static func checkProtocolFrame(_ frame: Frame) throws(WireError) {
        let bytes = frame.bytes
        guard bytes.count == magic.count + 1, bytes.starts(with: magic) else {
            let shown = bytes.prefix(16).map { String($0, radix: 16) }.joined(separator: " ")
            throw WireError(.notChimera, "first frame must be \"CHIMERA\" + version byte, got [\(shown)]")
        }
        guard bytes[magic.count] == version else {
            throw WireError(
                .unsupportedVersion,
                "protocol version \(bytes[magic.count]) is not supported (this peer speaks \(version))")
        }
    }

    static func decodeTensor(_ spec: Chimera_V1_TensorSpec, frame: Frame, limits: WireLimits) throws(WireError)
        -> Tensor
    {
        guard let dtype = DType(wire: spec.dtype) else {
            throw WireError(.unknownDType, "tensor \"\(spec.name)\" has dtype \(spec.dtype.rawValue)")
        }
        guard frame.count <= limits.maxFrameBytes else {
            throw WireError(
                .frameTooLarge, "tensor \"\(spec.name)\" frame is \(frame.count) bytes, limit \(limits.maxFrameBytes)")
        }
        var elements = 1
        var shape: [Int] = []
        shape.reserveCapacity(spec.shape.count)
        for dimension in spec.shape {
            guard dimension <= UInt64(Int.max) else {
                throw WireError(.invalidShape, "tensor \"\(spec.name)\" has dimension \(dimension)")
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: Int(dimension))
            guard !overflow else {
                throw WireError(.invalidShape, "tensor \"\(spec.name)\" shape \(spec.shape) overflows")
            }
            elements = product
            shape.append(Int(dimension))
        }
        let (expected, overflow) = elements.multipliedReportingOverflow(by: dtype.byteWidth)
        guard !overflow, expected == frame.count else {
            throw WireError(
                .sizeMismatch,
                "tensor \"\(spec.name)\" \(dtype) \(shape) needs \(overflow ? "too many" : String(expected)) bytes, frame has \(frame.count)"
            )
        }
        return Tensor(dtype: dtype, shape: shape, frame: frame)
    }

    // MARK: Routing envelope

    /// Splits what a ROUTER received from a REQ (or a DEALER that follows the REQ convention) into the
    /// peer's routing id and the protocol frames: `[routing id] [empty] [protocol] [control] [tensor]*`.
    public static func splitRoutingEnvelope(_ frames: [Frame]) throws(WireError)
        -> (routingID: Frame, payload: ArraySlice<Frame>)
    {
        guard frames.count >= 2, frames[1].count == 0 else {
            throw WireError(.badRoutingEnvelope, "expected [routing id][empty delimiter] before the protocol frame")
        }
        return (frames[0], frames[2...])
    }
}
