import ChimeraTestSupport
import ChimeraWire
import SwiftProtobuf
import Testing
import ZeroMQ

@Suite("Codec round trips over real sockets")
struct CodecRoundTripTests {
    static let cases: [(Transport, Int)] = Transport.allCases.flatMap { transport in
        [0, 1, 3, 8].map { (transport, $0) }
    }

    @Test("multipart messages with 0…n tensor frames", arguments: cases)
    func roundTrip(transport: Transport, tensorCount: Int) async throws {
        try await blocking {
            let endpoints = try EndpointFactory()
            let context = try Context()
            let router = try testSocket(context, .router)
            let endpoint = try router.bind(endpoints.bindable(transport))
            let worker = try testSocket(context, .req)
            try worker.connect(endpoint)

            var push = Chimera_V1_GradientPush()
            push.workerID = 7
            push.clock = 42
            push.loss = 0.25
            // Sizes straddle the zero-copy threshold; dtypes cover every kind.
            let tensors: [NamedTensor] = (0..<tensorCount).map { index in
                switch index % 4 {
                case 0: NamedTensor("g\(index)", .float32((0..<(1 + index * 9000)).map { Float($0) * 0.5 }, shape: nil))
                case 1: NamedTensor("d\(index)", .float64([1.5, -2.25, 3e300, 0], shape: [2, 2]))
                case 2: NamedTensor("b\(index)", .bytes(Array(0..<200)))
                default: NamedTensor("s\(index)", .float32([3.5], shape: []))
                }
            }
            try worker.send(WireCodec.encode(WireMessage(.gradientPush(push), requestID: 99, tensors: tensors)))

            let frames = try #require(try router.receiveMultipart())
            let (routingID, payload) = try WireCodec.splitRoutingEnvelope(frames)
            let decoded = try WireCodec.decode(payload)
            #expect(decoded.control.requestID == 99)
            guard case .gradientPush(let received) = decoded.body else {
                Issue.record("wrong body \(String(describing: decoded.body))")
                return
            }
            #expect(received == push)
            #expect(decoded.tensors.count == tensorCount)
            for (sent, got) in zip(tensors, decoded.tensors) {
                #expect(got.name == sent.name)
                #expect(got.tensor.dtype == sent.tensor.dtype)
                #expect(got.tensor.shape == sent.tensor.shape)
                #expect(got.tensor.byteArray() == sent.tensor.byteArray())
            }

            var ack = Chimera_V1_Ack()
            ack.clock = 43
            try router.send([routingID, Frame()] + WireCodec.encode(WireMessage(.ack(ack), requestID: 99)))
            let reply = try WireCodec.decode(try #require(try worker.receiveMultipart()))
            #expect(reply.body == .ack(ack))
        }
    }

    @Test("tensor accessors convert dtypes and accumulate from unaligned frames")
    func tensorAccessors() throws {
        let values: [Float] = [1, -2, 3.5, 1e-3]
        let tensor = Tensor.float32(values, shape: [2, 2])
        #expect(tensor.floats() == values)
        #expect(tensor.doubles() == values.map(Double.init))
        #expect(Tensor.float64([0.5, 2]).floats() == [0.5, 2])

        // A frame that starts one byte into a buffer, as libzmq can deliver from its receive buffer.
        let storage = ByteBox(count: 17)
        values.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: storage.bytes[1...]).copyMemory(from: $0) }
        let shifted = try Frame(noCopy: UnsafeRawBufferPointer(rebasing: storage.bytes[1...]), owner: storage)
        #expect(shifted.withUnsafeBytes { Int(bitPattern: $0.baseAddress!) % 4 } != 0)
        var spec = Chimera_V1_TensorSpec()
        spec.name = "g"
        spec.dtype = .float32
        spec.shape = [4]
        var control = Control()
        control.gradientPush = Chimera_V1_GradientPush()
        control.tensors = [spec]
        let body = try Frame(try control.serializedBytes() as [UInt8])
        let decoded = try WireCodec.decode([try Frame(WireCodec.protocolFrame), body, shifted])
        var accumulator: [Float] = [10, 10, 10, 10]
        let received = try decoded.tensor(named: "g")
        accumulator.withUnsafeMutableBufferPointer { received.accumulateFloat32(into: $0, scale: 2) }
        #expect(accumulator == [12, 6, 17, 10.002])
        #expect(try decoded.tensor(named: "g", dtype: .float32, shape: [4]).floats() == values)
        #expect(throws: WireError.self) { try decoded.tensor(named: "g", dtype: .float32, shape: [2, 2]) }
        #expect(throws: WireError.self) { try decoded.tensor(named: "missing") }
    }
}

/// Owns raw bytes for a zero-copy frame.
private final class ByteBox {
    let bytes: UnsafeMutableRawBufferPointer
    init(count: Int) { bytes = .allocate(byteCount: count, alignment: 16) }
    deinit { bytes.deallocate() }
}
