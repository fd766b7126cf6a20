import SwiftProtobuf
import Testing
import ZeroMQ

@testable import ChimeraWire

@Suite("Round codec: hand-written GradientPush and Weights, identical to the generated protobuf code")
struct RoundCodecTests {
    /// Field values that exercise every varint length, zero (left out) and the double's edge cases.
    static func randomPush(_ random: inout SystemRandomNumberGenerator) -> Chimera_V1_GradientPush {
        func pick(_ random: inout SystemRandomNumberGenerator) -> UInt64 {
            switch Int.random(in: 0..<4, using: &random) {
            case 0: 0
            case 1: UInt64.random(in: 1..<128, using: &random)
            case 2: UInt64.random(in: 128..<(1 << 35), using: &random)
            default: UInt64.random(in: 0...UInt64.max, using: &random)
            }
        }
        var push = Chimera_V1_GradientPush()
        push.workerID = UInt32(truncatingIfNeeded: pick(&random))
        push.jobID = pick(&random)
        push.clock = pick(&random)
        push.rows = pick(&random)
        push.loss =
            [0.0, -0.0, 0.6931, 1e-300, Double.random(in: -10...10, using: &random)][
                Int.random(in: 0..<5, using: &random)]
        push.isDelta = Bool.random(using: &random)
        push.thenPull = Bool.random(using: &random)
        push.session = pick(&random)
        return push
    }

    static func generic(_ body: ControlBody, requestID: UInt64, name: String, values: [Float], shape: [Int]) throws
        -> [Frame]
    {
        try WireCodec.encode(
            WireMessage(body, requestID: requestID, tensors: [NamedTensor(name, .float32(values, shape: shape))]))
    }

    @Test("pushes: the same bytes as SwiftProtobuf, and read back as SwiftProtobuf reads them")
    func pushes() throws {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let push = Self.randomPush(&random)
            let requestID = [0, 1, 300, UInt64.max][Int.random(in: 0..<4, using: &random)]
            let (outputs, stride) = (Int.random(in: 1...3, using: &random), Int.random(in: 1...200, using: &random))
            let values = (0..<(outputs * stride)).map { _ in Float.random(in: -5...5, using: &random) }
            let fast = try values.withUnsafeBufferPointer {
                try RoundCodec.encode(push, requestID: requestID, update: $0, outputs: outputs, stride: stride)
            }
            let reference = try Self.generic(
                .gradientPush(push), requestID: requestID, name: push.isDelta ? "delta" : "gradient", values: values,
                shape: [outputs, stride])
            #expect(fast.map(\.bytes) == reference.map(\.bytes))
            let decoded = try #require(RoundCodec.decodePush(reference[...]))
            #expect(decoded.requestID == requestID)
            #expect(decoded.body == push)
            #expect(decoded.tensor.shape == [outputs, stride])
            #expect(decoded.tensor.floats() == values)
        }
    }

    @Test("weights: the same bytes as SwiftProtobuf, and read back")
    func weights() throws {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<1_000 {
            var header = Chimera_V1_Weights()
            header.jobID = UInt64.random(in: 0...1_000, using: &random)
            header.version = UInt64.random(in: 0...UInt64.max, using: &random)
            header.minClock = UInt64.random(in: 0...3, using: &random)
            header.done = Bool.random(using: &random)
            let requestID = UInt64.random(in: 0...100_000, using: &random)
            let values = (0..<22).map { _ in Float.random(in: -1...1, using: &random) }
            let fast = try values.withUnsafeBufferPointer {
                try RoundCodec.encode(header, requestID: requestID, weights: $0, outputs: 1, stride: 22)
            }
            let reference = try Self.generic(
                .weights(header), requestID: requestID, name: "weights", values: values, shape: [1, 22])
            #expect(fast.map(\.bytes) == reference.map(\.bytes))
            let decoded = try #require(RoundCodec.decodeWeights(reference[...]))
            #expect(decoded.requestID == requestID && decoded.body == header && decoded.tensor.floats() == values)
        }
    }

    @Test("sent straight to a socket: the frames encode makes, for pushes and weights")
    func sentOnSocket() throws {
        let context = try Context()
        let receiver = try context.socket(.pair)
        try receiver.bind("inproc://round-codec-send")
        let sender = try context.socket(.pair)
        try sender.connect("inproc://round-codec-send")
        var random = SystemRandomNumberGenerator()
        var frames: [Frame] = []
        for _ in 0..<300 {
            let push = Self.randomPush(&random)
            let stride = Int.random(in: 1...100, using: &random)
            let values = (0..<stride).map { _ in Float.random(in: -5...5, using: &random) }
            let (sent, expected) = try values.withUnsafeBufferPointer {
                (
                    try RoundCodec.send(push, requestID: 7, update: $0, outputs: 1, stride: stride, on: sender),
                    try RoundCodec.encode(push, requestID: 7, update: $0, outputs: 1, stride: stride)
                )
            }
            #expect(try receiver.receiveMultipart(into: &frames))
            #expect(frames.map(\.bytes) == expected.map(\.bytes) && sent == expected.reduce(0) { $0 + $1.count })
            var header = Chimera_V1_Weights()
            header.version = push.clock
            header.done = push.isDelta
            let weights = try values.withUnsafeBufferPointer {
                try RoundCodec.send(header, requestID: 9, weights: $0, outputs: 1, stride: stride, on: sender)
                return try RoundCodec.encode(header, requestID: 9, weights: $0, outputs: 1, stride: stride)
            }
            #expect(try receiver.receiveMultipart(into: &frames))
            #expect(frames.map(\.bytes) == weights.map(\.bytes))
        }
    }

    @Test("anything but the plain form is left to the generic decoder")
    func fallsBack() throws {
        var push = Chimera_V1_GradientPush()
        push.workerID = 2
        push.clock = 5
        let values: [Float] = [1, 2, 3, 4]
        let plain = try Self.generic(
            .gradientPush(push), requestID: 1, name: "gradient", values: values, shape: [1, 4])
        #expect(RoundCodec.decodePush(plain[...]) != nil)
        #expect(RoundCodec.decodeWeights(plain[...]) == nil)  // another body

        // Wrong tensor name, a delta named "gradient", one dimension, two tensors, float64, NaN, no tensor.
        #expect(
            RoundCodec.decodePush(
                try Self.generic(.gradientPush(push), requestID: 1, name: "x", values: values, shape: [1, 4])[...])
                == nil)
        var delta = push
        delta.isDelta = true
        #expect(
            RoundCodec.decodePush(
                try Self.generic(.gradientPush(delta), requestID: 1, name: "gradient", values: values, shape: [1, 4])[
                    ...])
                == nil)
        #expect(
            RoundCodec.decodePush(
                try Self.generic(.gradientPush(push), requestID: 1, name: "gradient", values: values, shape: [4])[...])
                == nil)
        let two = try WireCodec.encode(
            WireMessage(
                .gradientPush(push),
                tensors: [NamedTensor("gradient", .float32(values, shape: [1, 4])), NamedTensor("b", .float32([1]))]))
        #expect(RoundCodec.decodePush(two[...]) == nil)
        let doubles = try WireCodec.encode(
            WireMessage(
                .gradientPush(push), tensors: [NamedTensor("gradient", .float64([1, 2, 3, 4], shape: [1, 4]))]))
        #expect(RoundCodec.decodePush(doubles[...]) == nil)
        let nan = try Self.generic(
            .gradientPush(push), requestID: 1, name: "gradient", values: [1, .nan, 3, 4], shape: [1, 4])
        #expect(RoundCodec.decodePush(nan[...]) == nil)
        #expect(throws: WireError.self) { try WireCodec.decode(nan) }  // and the generic path names the defect
        let bare = try WireCodec.encode(WireMessage(.gradientPush(push)))
        #expect(RoundCodec.decodePush(bare[...]) == nil)

        // Unknown fields (a newer sender) are kept by the generic path: the shortcut declines them.
        var control = Control()
        control.requestID = 1
        control.body = .gradientPush(push)
        var spec = Chimera_V1_TensorSpec()
        spec.name = "gradient"
        spec.dtype = .float32
        spec.shape = [1, 4]
        control.tensors = [spec]
        var bytes: [UInt8] = try control.serializedBytes()
        bytes += [0xF8, 0x07, 0x01]  // field 127, varint 1
        let unknown = [
            try Frame(WireCodec.protocolFrame), try Frame(bytes), try Frame(values.withUnsafeBytes { Array($0) }),
        ]
        #expect(RoundCodec.decodePush(unknown[...]) == nil)
        #expect((try? WireCodec.decode(unknown)) != nil)
    }

    @Test("random corruptions: never a crash; whatever the shortcut reads, SwiftProtobuf reads the same")
    func corruptions() throws {
        var random = SystemRandomNumberGenerator()
        var push = Chimera_V1_GradientPush()
        push.workerID = 3
        push.jobID = 9
        push.clock = 1_000
        push.rows = 100
        push.loss = 0.5
        push.thenPull = true
        let values = (0..<22).map { Float($0) }
        let plain = try Self.generic(
            .gradientPush(push), requestID: 77, name: "gradient", values: values, shape: [1, 22])
        let control = plain[1].bytes
        var accepted = 0
        for _ in 0..<20_000 {
            var bytes = control
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                switch Int.random(in: 0..<3, using: &random) {
                case 0:
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                case 1: bytes.removeLast(Int.random(in: 0...min(4, bytes.count), using: &random))
                default:
                    bytes.insert(
                        UInt8.random(in: 0...255, using: &random), at: Int.random(in: 0...bytes.count, using: &random))
                }
            }
            let frames = [try Frame(WireCodec.protocolFrame), try Frame(bytes), try Frame(plain[2].bytes)]
            guard let fast = RoundCodec.decodePush(frames[...]) else { continue }
            accepted += 1
            let generic = try WireCodec.decode(frames)
            #expect(generic.control.requestID == fast.requestID)
            #expect(generic.body == .gradientPush(fast.body))
            #expect(try generic.tensor(named: fast.body.isDelta ? "delta" : "gradient").shape == fast.tensor.shape)
        }
        #expect(accepted > 0)
    }
}

@Suite("Protobuf writer used by the round codec")
struct ProtoWriterTests {
    @Test("nested fields of any length get their varint length, as protobuf writes it")
    func nestedLengths() throws {
        for length in [0, 1, 127, 128, 300, 20_000] {
            var writer = ProtoWriter()
            writer.nested(2) { inner in
                for index in 0..<length { inner.bytes.append(UInt8(truncatingIfNeeded: index)) }
            }
            var expected: [UInt8] = [0x12]
            var remaining = length
            while remaining >= 0x80 {
                expected.append(UInt8(remaining & 0x7F) | 0x80)
                remaining >>= 7
            }
            expected.append(UInt8(remaining))
            expected += (0..<length).map { UInt8(truncatingIfNeeded: $0) }
            #expect(writer.bytes == expected)
            // And the reader takes it back.
            let read = expected.withUnsafeBytes { raw -> [UInt8]? in
                var reader = ProtoReader(raw)
                guard let (number, wireType) = reader.field(), number == 2, wireType == 2,
                    let body = reader.lengthDelimited()
                else {
                    return nil
                }
                return reader.atEnd ? Array(body) : nil
            }
            #expect(read == (0..<length).map { UInt8(truncatingIfNeeded: $0) })
        }
    }
}
