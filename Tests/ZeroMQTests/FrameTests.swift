import ChimeraTestSupport
import Dispatch
import Synchronization
import Testing
import ZeroMQ

/// Signals when released: proves libzmq ran the zero-copy release callback.
private final class ReleaseProbe {
    let released = DispatchSemaphore(value: 0)
    let bytes: UnsafeMutableRawBufferPointer

    init(count: Int) {
        bytes = .allocate(byteCount: count, alignment: 64)
        for index in 0..<count { bytes[index] = UInt8(truncatingIfNeeded: index &* 31) }
    }

    deinit {
        bytes.deallocate()
        released.signal()
    }
}

@Suite("Frames")
struct FrameTests {
    @Test(
        "zero-copy send reads the caller's buffer in place and runs the release callback", arguments: Transport.allCases
    )
    func zeroCopyReleaseCallback(transport: Transport) async throws {
        try await blocking {
            let endpoints = try EndpointFactory()
            let context = try Context()
            let receiver = try testSocket(context, .pair)
            let endpoint = try receiver.bind(endpoints.bindable(transport))
            let sender = try testSocket(context, .pair)
            try sender.connect(endpoint)

            let count = 256 << 10
            var probe: ReleaseProbe? = ReleaseProbe(count: count)
            let released = probe!.released
            let address = UnsafeRawPointer(probe!.bytes.baseAddress!)
            try sender.send(Frame(noCopy: UnsafeRawBufferPointer(probe!.bytes), owner: probe!))
            probe = nil  // only libzmq holds the owner now

            var received = try receiver.receive()
            try #require(received != nil)
            #expect(received!.count == count)
            received!.withUnsafeBytes { bytes in
                #expect(
                    bytes[0] == 0 && bytes[1] == 31 && bytes[count - 1] == UInt8(truncatingIfNeeded: (count - 1) &* 31))
                if transport == .inproc {
                    // inproc hands the same buffer over: nothing was copied.
                    #expect(bytes.baseAddress == address)
                }
            }
            received = nil
            #expect(released.wait(timeout: .now() + 10) == .success)
        }
    }

    @Test("a 64 MiB frame crosses tcp intact")
    func largeFrame() async throws {
        try await blocking {
            let context = try Context()
            let pull = try testSocket(context, .pull)
            let endpoint = try pull.bind("tcp://127.0.0.1:*")
            let push = try testSocket(context, .push)
            try push.connect(endpoint)

            let count = 64 << 20
            let probe = ReleaseProbe(count: count)
            try push.send(Frame(noCopy: UnsafeRawBufferPointer(probe.bytes), owner: probe))
            let frame = try #require(try pull.receive())
            #expect(frame.count == count)
            let mismatches = frame.withUnsafeBytes { bytes in
                stride(from: 0, to: count, by: 4099).filter { bytes[$0] != UInt8(truncatingIfNeeded: $0 &* 31) }.count
            }
            #expect(mismatches == 0)
            #expect(frame.withUnsafeBytes { $0[count - 1] } == UInt8(truncatingIfNeeded: (count - 1) &* 31))
        }
    }

    @Test("frames copy, report size and decode text")
    func frameBasics() throws {
        let frame = try Frame([1, 2, 3])
        #expect(frame.count == 3)
        #expect(frame.bytes == [1, 2, 3])
        #expect(frame.contentEquals([1, 2, 3]))
        #expect(try Frame(string: "héllo").string == "héllo")
        #expect(Frame().count == 0)
        let sized = try Frame(count: 4)
        sized.withUnsafeMutableBytes { $0.storeBytes(of: 0x0403_0201 as UInt32, as: UInt32.self) }
        #expect(sized.bytes == [1, 2, 3, 4])
    }
}
