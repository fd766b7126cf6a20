import ChimeraCluster
import Foundation
import Synchronization

/// A small HTTP/1.1 load generator on plain sockets (keep-alive, Content-Length or chunked replies):
/// the same client measures the Python Chimera's endpoints and ours.
public enum HTTPLoad {
    public struct Reply {
        public let status: Int
        public let body: [UInt8]
    }

    public struct Result {
        /// Per-request latencies in seconds, sorted.
        public let latencies: [Double]
        public let wallSeconds: Double
        public let failures: Int

        public var requestsPerSecond: Double { Double(latencies.count) / wallSeconds }
        public func percentile(_ p: Double) -> Double {
            Summary.percentile(sorted: latencies, p)
        }
    }

    /// Requests against several servers in turns (`rounds` rounds; in each, every target's share, one
    /// target after the other), so that every server meets the same stretches of a noisy machine.
    /// Returns each target's latencies pooled over the rounds, and the ratio of the first target's
    /// median to each other's, per round.
    public struct Target {
        public let url: String
        public let body: [UInt8]
        public let clients: Int
        public let requestsPerRound: Int
        /// Processes stopped (SIGSTOP) while this target is measured and continued after: the other
        /// servers, so that what they do in the background is not charged to this one.
        public let freezing: [Int32]

        public init(url: String, body: [UInt8], clients: Int, requestsPerRound: Int, freezing: [Int32] = []) {
            self.url = url
            self.body = body
            self.clients = clients
            self.requestsPerRound = requestsPerRound
            self.freezing = freezing
        }
    }

    public static func interleaved(_ targets: [Target], rounds: Int) throws -> (
        results: [Result], roundRatios: [[Double]]
    ) {
        var runs = [[Result]](repeating: [], count: targets.count)
        var ratios = [[Double]](repeating: [], count: targets.count)
        for _ in 0..<rounds {
            var medians: [Double] = []
            for (index, target) in targets.enumerated() {
                for process in target.freezing { kill(process, SIGSTOP) }
                defer { for process in target.freezing { kill(process, SIGCONT) } }
                let result = try run(
                    url: target.url, body: target.body, clients: target.clients, requests: target.requestsPerRound)
                runs[index].append(result)
                medians.append(result.percentile(0.5))
            }
            for index in targets.indices { ratios[index].append(medians[0] / medians[index]) }
        }
        let pooled = runs.map { results in
            Result(
                latencies: results.flatMap(\.latencies).sorted(), wallSeconds: results.map(\.wallSeconds).reduce(0, +),
                failures: results.map(\.failures).reduce(0, +))
        }
        return (pooled, ratios)
    }

    /// One request on a fresh connection.
    public static func request(_ url: String, method: String = "POST", body: [UInt8] = []) throws -> Reply {
        let connection = try Connection(url)
        return try connection.send(method: method, body: body)
    }

    /// `clients` threads, each sending `requests` requests (POSTs of `body`, or GETs) back to back on its
    /// own connection (after `warmup` unmeasured ones).
    public static func run(
        url: String, method: String = "POST", body: [UInt8], clients: Int, requests: Int, warmup: Int = 3
    ) throws -> Result {
        let collected = Mutex<(latencies: [Double], failures: Int)>(([], 0))
        let group = DispatchGroup()
        let ready = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        for _ in 0..<clients {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var mine: [Double] = []
                var failed = 0
                var connection = try? Connection(url)
                for _ in 0..<warmup { _ = try? connection?.send(method: method, body: body) }
                ready.signal()
                go.wait()
                for _ in 0..<requests {
                    let began = monotonicSeconds()
                    do {
                        if connection == nil { connection = try Connection(url) }
                        let reply = try connection!.send(method: method, body: body)
                        if reply.status == 200 { mine.append(monotonicSeconds() - began) } else { failed += 1 }
                    } catch {
                        failed += 1
                        connection = nil
                    }
                }
                collected.withLock {
                    $0.latencies += mine
                    $0.failures += failed
                }
            }
        }
        for _ in 0..<clients { ready.wait() }
        let wallStart = monotonicSeconds()
        for _ in 0..<clients { go.signal() }
        group.wait()
        let (latencies, failures) = collected.withLock { ($0.latencies, $0.failures) }
        return Result(latencies: latencies.sorted(), wallSeconds: monotonicSeconds() - wallStart, failures: failures)
    }

    /// One keep-alive connection.
    final class Connection {
        let fd: Int32
        let host: String
        let path: String
        private var buffer: [UInt8] = []

        init(_ url: String) throws {
            guard let parsed = URL(string: url), let host = parsed.host, let port = parsed.port else {
                throw BenchmarkError("bad URL \(url)")
            }
            self.host = "\(host):\(port)"
            path = parsed.path.isEmpty ? "/" : parsed.path
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr(host == "localhost" ? "127.0.0.1" : host)
            address.sin_port = UInt16(port).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            guard connected == 0 else {
                close(fd)
                throw BenchmarkError("cannot connect to \(url)")
            }
        }

        deinit { close(fd) }

        func send(method: String, body: [UInt8]) throws -> Reply {
            var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: keep-alive\r\n"
            if method == "POST" { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
            try sendAll(Array((head + "\r\n").utf8), body)
            let header = try readHeader()
            let lines = header.split(separator: "\r\n")
            guard let statusLine = lines.first,
                let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "")
            else {
                throw BenchmarkError("malformed status line")
            }
            var length: Int?
            var chunked = false
            for line in lines.dropFirst() {
                let parts = line.split(separator: ":", maxSplits: 1).map {
                    $0.trimmingCharacters(in: .whitespaces).lowercased()
                }
                guard parts.count == 2 else { continue }
                if parts[0] == "content-length" { length = Int(parts[1]) }
                if parts[0] == "transfer-encoding" && parts[1].contains("chunked") { chunked = true }
            }
            if chunked {
                var body: [UInt8] = []
                while true {
                    let sizeLine = try readLine()
                    guard let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16) else {
                        throw BenchmarkError("bad chunk size")
                    }
                    if size == 0 {
                        _ = try readLine()
                        return Reply(status: status, body: body)
                    }
                    body += try readExactly(size)
                    _ = try readLine()
                }
            }
            return Reply(status: status, body: try readExactly(length ?? 0))
        }

        /// Head and body in one gathered send (no copy of the body into a request buffer, no second
        /// segment for the server to wake up for).
        private func sendAll(_ head: [UInt8], _ body: [UInt8]) throws {
            let total = head.count + body.count
            var sent = 0
            try head.withUnsafeBytes { h in
                try body.withUnsafeBytes { b in
                    while sent < total {
                        var parts: [iovec] = []
                        if sent < h.count {
                            parts.append(
                                iovec(
                                    iov_base: UnsafeMutableRawPointer(mutating: h.baseAddress! + sent),
                                    iov_len: h.count - sent))
                            if b.count > 0 {
                                parts.append(
                                    iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress!), iov_len: b.count)
                                )
                            }
                        } else {
                            let offset = sent - h.count
                            parts.append(
                                iovec(
                                    iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress! + offset),
                                    iov_len: b.count - offset))
                        }
                        let n = parts.withUnsafeMutableBufferPointer { vectors -> Int in
                            var message = msghdr()
                            message.msg_iov = vectors.baseAddress
                            message.msg_iovlen = vectors.count
                            return sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
                        }
                        guard n > 0 else { throw BenchmarkError("send failed") }
                        sent += n
                    }
                }
            }
        }

        private var chunk = [UInt8](repeating: 0, count: 65_536)

        private func fill() throws {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw BenchmarkError("connection closed") }
            buffer += chunk[0..<n]
        }

        private func readHeader() throws -> String {
            while true {
                if let end = find([13, 10, 13, 10]) {
                    let header = String(decoding: buffer[0..<end], as: UTF8.self)
                    buffer.removeFirst(end + 4)
                    return header
                }
                try fill()
            }
        }

        private func readLine() throws -> String {
            while true {
                if let end = find([13, 10]) {
                    let line = String(decoding: buffer[0..<end], as: UTF8.self)
                    buffer.removeFirst(end + 2)
                    return line
                }
                try fill()
            }
        }

        private func readExactly(_ count: Int) throws -> [UInt8] {
            while buffer.count < count { try fill() }
            let out = Array(buffer[0..<count])
            buffer.removeFirst(count)
            return out
        }

        private func find(_ pattern: [UInt8]) -> Int? {
            guard buffer.count >= pattern.count else { return nil }
            for i in 0...(buffer.count - pattern.count) where buffer[i] == pattern[0] {
                if Array(buffer[i..<(i + pattern.count)]) == pattern { return i }
            }
            return nil
        }
    }
}
