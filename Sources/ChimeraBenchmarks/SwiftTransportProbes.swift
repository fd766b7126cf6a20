import ChimeraCluster
import Foundation
import ZeroMQ

/// Our Swift layer doing exactly what the floor's `lat.c` and `thr.c` do, so the two compare directly.
/// Peers run in child processes (`chimera bench lat-server` / `thr-receiver`), like the C programs' forks.
public enum SwiftTransportProbes {
    /// A buffer the benchmark owns for zero-copy sends; it outlives every message that points at it.
    final class Buffer {
        let bytes: UnsafeMutableRawBufferPointer
        init(count: Int, fill: UInt8) {
            bytes = .allocate(byteCount: max(count, 16), alignment: 64)
            bytes.initializeMemory(as: UInt8.self, repeating: fill)
        }
        deinit { bytes.deallocate() }
        func prefix(_ count: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[0..<count]) }
    }

    // MARK: Latency (REQ → ROUTER echo)

    /// The ROUTER echo server: replies with the payload to the sender's routing id until it gets "Q".
    public static func latencyServer(endpoint: String, zeroCopy: Bool, maxSize: Int) throws {
        let context = try Context()
        let router = try context.socket(.router)
        try router.setLinger(milliseconds: 0)
        try router.bind(endpoint)
        print("ready", terminator: "\n")
        fflush(nil)
        let buffer = Buffer(count: maxSize, fill: 1)
        while true {
            guard let frames = try router.receiveMultipart(), frames.count == 3 else { continue }
            let body = frames[2]
            let quit = body.count == 1 && body.withUnsafeBytes { $0[0] } == UInt8(ascii: "Q")
            if zeroCopy {
                try router.send(frames)
            } else {
                // The naive path: copy out into a user buffer, then copy back into a new message.
                let count = body.withUnsafeBytes { source in
                    UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[0..<source.count]).copyMemory(from: source)
                    return source.count
                }
                try router.send([frames[0], frames[1], try Frame(copying: buffer.prefix(count))])
            }
            if quit { break }
        }
    }

    /// Round trips per size, timed like lat.c (warm-up, then until `seconds` or 20,000 samples).
    static func latencyClient(transport: String, zeroCopy: Bool, seconds: Double, sizes: [Int], ipcDirectory: URL)
        throws -> [ResultLine]
    {
        let endpoint = try freshEndpoint(transport, tag: "lat", ipcDirectory: ipcDirectory)
        let maxSize = sizes.max() ?? 1
        let server = try ChildProcess(
            name: "lat-server",
            arguments: [
                "bench", "lat-server", "--endpoint", endpoint, "--mode", zeroCopy ? "zc" : "copy",
                "--max-size", "\(maxSize)",
            ],
            captureOutput: true)
        guard server.nextLine(timeoutSeconds: 30) == "ready" else { throw BenchmarkError("lat-server did not start") }

        let context = try Context()
        let socket = try context.socket(.req)
        try socket.setLinger(milliseconds: 0)
        try socket.setReceiveTimeout(milliseconds: 30_000)
        try socket.connect(endpoint)
        let buffer = Buffer(count: maxSize, fill: 7)
        let receiveBuffer = Buffer(count: maxSize, fill: 0)
        var lines: [ResultLine] = []
        for size in sizes {
            if size > 0 { buffer.bytes[0] = UInt8(ascii: "x") }
            let warm = size >= 16 << 20 ? 3 : 20
            var samples: [Double] = []
            let start = monotonicSeconds()
            for iteration in 0..<(warm + 20_000) {
                let t0 = monotonicSeconds()
                if zeroCopy {
                    try socket.send(Frame(noCopy: buffer.prefix(size), owner: buffer))
                    guard let reply = try socket.receive(), reply.count == size else {
                        throw BenchmarkError("latency: lost or wrong reply")
                    }
                    _ = reply
                } else {
                    try socket.send(Frame(copying: buffer.prefix(size)))
                    guard let reply = try socket.receive(), reply.count == size else {
                        throw BenchmarkError("latency: lost or wrong reply")
                    }
                    // like zmq_recv into a user buffer
                    reply.withUnsafeBytes { receiveBuffer.bytes.copyMemory(from: $0) }
                }
                let t1 = monotonicSeconds()
                if iteration >= warm { samples.append((t1 - t0) * 1e6) }
                if samples.count >= 20 && t1 - start > seconds { break }
            }
            let summary = Summary(samples)
            lines.append(
                ResultLine(
                    "lat transport=\(transport) mode=\(zeroCopy ? "zc" : "copy") size=\(sizeLabel(size)) bytes=\(size) n=\(summary.count) median_us=\(summary.median) p99_us=\(summary.p99) min_us=\(summary.min)"
                )!)
        }
        buffer.bytes[0] = UInt8(ascii: "Q")
        try socket.send(Frame(copying: buffer.prefix(1)))
        _ = try socket.receive()
        socket.close()
        server.wait(timeoutSeconds: 10)
        return lines
    }

    // MARK: Throughput (PUSH → PULL)

    /// The PULL side: receives `count` messages of `size` bytes and prints a `thr` line timed from the
    /// sender's stamp (CLOCK_MONOTONIC is system-wide) to the last arrival.
    public static func throughputReceiver(endpoint: String, zeroCopy: Bool, size: Int, count: Int) throws {
        let context = try Context()
        let pull = try context.socket(.pull)
        try pull.setLinger(milliseconds: 0)
        try pull.setReceiveTimeout(milliseconds: 30_000)
        try pull.setReceiveHighWaterMark(0)
        try pull.bind(endpoint)
        print("ready")
        fflush(nil)
        let buffer = Buffer(count: size, fill: 0)
        guard try pull.receive() != nil else { throw BenchmarkError("no sync message") }
        var startStamp = 0.0
        for index in 0..<count {
            guard let frame = try pull.receive() else {
                throw BenchmarkError("receive timeout after \(index) messages")
            }
            guard frame.count == size else { throw BenchmarkError("size mismatch \(frame.count) != \(size)") }
            let stamp: Double
            if zeroCopy {
                stamp = frame.withUnsafeBytes { $0.loadUnaligned(as: Double.self) }
            } else {
                frame.withUnsafeBytes { buffer.bytes.copyMemory(from: $0) }
                stamp = buffer.bytes.loadUnaligned(as: Double.self)
            }
            if index == 0 { startStamp = stamp }
        }
        let elapsed = monotonicSeconds() - startStamp
        let megabytes = Double(size) * Double(count) / elapsed / 1e6
        print(
            "thr transport=\(endpoint.hasPrefix("tcp") ? "tcp" : "ipc") mode=\(zeroCopy ? "zc" : "copy") size=\(sizeLabel(size)) bytes=\(size) n=\(count) secs=\(elapsed) MBps=\(megabytes) msgps=\(Double(count) / elapsed)"
        )
        fflush(nil)
    }

    static func throughputSender(transport: String, zeroCopy: Bool, targetMiB: Double, sizes: [Int], ipcDirectory: URL)
        throws -> [ResultLine]
    {
        var lines: [ResultLine] = []
        for requested in sizes {
            let size = max(requested, 8)
            let count = min(max(Int(targetMiB * Double(1 << 20)) / size, 20), 200_000)
            let endpoint = try freshEndpoint(transport, tag: "thr", ipcDirectory: ipcDirectory)
            let receiver = try ChildProcess(
                name: "thr-receiver",
                arguments: [
                    "bench", "thr-receiver", "--endpoint", endpoint, "--mode", zeroCopy ? "zc" : "copy",
                    "--size", "\(size)", "--count", "\(count)",
                ],
                captureOutput: true)
            guard receiver.nextLine(timeoutSeconds: 30) == "ready" else {
                throw BenchmarkError("thr-receiver did not start")
            }

            let context = try Context()
            let push = try context.socket(.push)
            try push.setLinger(milliseconds: -1)
            try push.setSendHighWaterMark(0)
            try push.setImmediate(true)
            try push.setReconnectInterval(milliseconds: 10)
            try push.connect(endpoint)
            let buffer = Buffer(count: size, fill: 3)
            try push.send(bytes: [UInt8](repeating: 0, count: 8))  // sync, not timed
            let start = monotonicSeconds()
            buffer.bytes.storeBytes(of: start, as: Double.self)
            for _ in 0..<count {
                if zeroCopy {
                    try push.send(Frame(noCopy: buffer.prefix(size), owner: buffer))
                } else {
                    try push.send(Frame(copying: buffer.prefix(size)))
                }
            }
            guard let line = receiver.nextLine(timeoutSeconds: 120), let result = ResultLine(line) else {
                throw BenchmarkError("thr-receiver printed no result")
            }
            lines.append(result)
            receiver.wait(timeoutSeconds: 10)
            push.close()
        }
        return lines
    }

    /// A tcp endpoint on a free loopback port (found the way the floor's pick_port does), or an ipc path.
    static func freshEndpoint(_ transport: String, tag: String, ipcDirectory: URL) throws -> String {
        if transport == "ipc" {
            return "ipc://\(ipcDirectory.path)/swift-\(tag)-\(UUID().uuidString.prefix(8)).sock"
        }
        let context = try Context()
        let probe = try context.socket(.pair)
        let endpoint = try probe.bind("tcp://127.0.0.1:*")
        probe.close()
        return endpoint
    }
}
