import Testing
import ZeroMQ

@testable import ChimeraCluster

@Suite("Peer guard: per-peer rates and rate-limited rejection logs")
struct PeerGuardTests {
    @Test("a peer over its rate is refused for the rest of the second; others are not; the next second starts afresh")
    func rates() throws {
        var guardian = PeerGuard(maxMessagesPerSecond: 3)
        let flooder = try Frame([0, 1, 2, 3, 4])
        let worker = try Frame([0, 1, 2, 3, 5])
        var admitted = 0
        for _ in 0..<3 where guardian.admit(flooder, now: 10.0) { admitted += 1 }
        #expect(admitted == 3)
        let overRate = guardian.admit(flooder, now: 10.5)
        let other = guardian.admit(worker, now: 10.5)
        let nextSecond = guardian.admit(flooder, now: 11.0)
        #expect(!overRate && other && nextSecond)
    }

    @Test("long routing ids (set by the peer) are told apart too")
    func longIdentities() throws {
        let a = try Frame(Array("a-worker-with-a-long-identity-1".utf8))
        let b = try Frame(Array("a-worker-with-a-long-identity-2".utf8))
        #expect(PeerGuard.key(a) != PeerGuard.key(b))
        #expect(PeerGuard.key(try Frame([1])) != PeerGuard.key(try Frame([0, 1])))
    }

    @Test("one log line per kind a second; the next one says how many were left out")
    func logs() {
        var guardian = PeerGuard(maxMessagesPerSecond: 10)
        let first = guardian.logLine("bad", "first", now: 1.0)
        let second = guardian.logLine("bad", "second", now: 1.2)
        let third = guardian.logLine("bad", "third", now: 1.4)
        let another = guardian.logLine("other", "another kind", now: 1.4)
        #expect(first == "first" && second == nil && third == nil && another == "another kind")
        let next = guardian.logLine("bad", "fourth", now: 2.1)
        #expect(next?.hasPrefix("fourth (and 2 more") == true, "\(next ?? "nil")")
    }
}
