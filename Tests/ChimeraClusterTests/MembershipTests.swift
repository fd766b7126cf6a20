import Testing
import ZeroMQ

@testable import ChimeraCluster

/// The membership state machine: registration rules, sessions, liveness and forgetting, without sockets.
@Suite("Membership")
struct MembershipTests {
    static func hello(_ name: String, pid: UInt32 = 100, host: String = "a", columns: [String] = ["x", "y"])
        -> Membership.Hello
    {
        Membership.Hello(name: name, featureNames: columns, rows: 10, pid: pid, host: host)
    }

    /// Admits and registers; fails the test on a refusal.
    @discardableResult
    static func join(_ membership: inout Membership, _ hello: Membership.Hello, now: Double = 0, session: UInt64 = 7)
        throws -> WorkerRecord
    {
        let admission = try membership.admit(hello, reference: nil, now: now).get()
        if admission.restarting { _ = membership.markDead(admission.id, inJob: false) }
        return membership.register(hello, as: admission, session: session, now: now)
    }

    @Test("ids are handed out in order; a restarted worker keeps its id; the same process may say hello again")
    func ids() throws {
        var membership = Membership(settings: .init())
        #expect(try Self.join(&membership, Self.hello("a")).id == 1)
        #expect(try Self.join(&membership, Self.hello("b", pid: 200)).id == 2)
        // The same process again (same pid and host): the same id, the old registration restarts.
        let again = try membership.admit(Self.hello("a"), reference: nil, now: 1).get()
        #expect(again == Membership.Admission(id: 1, restarting: true))
        // A restart after being declared dead: the old id, nothing to restart.
        _ = membership.markDead(2, inJob: true)
        #expect(
            try membership.admit(Self.hello("b", pid: 201), reference: nil, now: 1).get()
                == Membership.Admission(id: 2, restarting: false))
    }

    @Test("another live process under a name in use waits; without pids it takes the name over")
    func nameInUse() throws {
        var membership = Membership(settings: .init())
        try Self.join(&membership, Self.hello("a", pid: 100, host: "h1"))
        let refusal = membership.admit(Self.hello("a", pid: 101, host: "h1"), reference: nil, now: 2.04)
        #expect(refusal == .failure(.nameInUse(pid: 100, host: "h1", seenSecondsAgo: 2.04)))
        #expect(
            Membership.Refusal.nameInUse(pid: 100, host: "h1", seenSecondsAgo: 2.04).message(name: "a", maxWorkers: 4)
                .contains("seen 2.0 s ago"))
        #expect(membership.admit(Self.hello("a", pid: 100, host: "h2"), reference: nil, now: 1).isFailure)
        #expect(try membership.admit(Self.hello("a", pid: 0), reference: nil, now: 1).get().restarting)
    }

    @Test("columns must match the job's, or the other live workers'; a malformed hello is refused")
    func columns() throws {
        var membership = Membership(settings: .init())
        try Self.join(&membership, Self.hello("a"))
        #expect(
            membership.admit(Self.hello("b", columns: ["x", "z"]), reference: nil, now: 0)
                == .failure(.columnsDiffer(missing: ["y"], unexpected: ["z"])))
        // The running job's columns decide when there is one.
        #expect(
            membership.admit(Self.hello("b"), reference: ["x"], now: 0)
                == .failure(.columnsDiffer(missing: [], unexpected: ["y"])))
        // The worker itself restarting with new columns is compared with the others, not with itself.
        #expect(!membership.admit(Self.hello("a", columns: ["q"]), reference: nil, now: 0).isFailure)
        #expect(
            membership.admit(Membership.Hello(name: "", featureNames: ["x"], rows: 1), reference: nil, now: 0)
                == .failure(.malformed))
        #expect(
            membership.admit(Membership.Hello(name: "c", featureNames: ["x", "y"], rows: 0), reference: nil, now: 0)
                == .failure(.malformed))
    }

    @Test("a column block may hold none of the others' columns, never part of them; other workers may not")
    func columnBlocks() throws {
        var membership = Membership(settings: .init())
        var first = Self.hello("a", columns: ["f0", "f1"])
        first.columnBlock = true
        try Self.join(&membership, first)
        var other = Self.hello("b", columns: ["f2", "f3"])
        other.columnBlock = true
        #expect(!membership.admit(other, reference: nil, now: 0).isFailure)
        other.featureNames = ["f1", "f2"]
        #expect(
            membership.admit(other, reference: nil, now: 0)
                == .failure(.columnsDiffer(missing: ["f0"], unexpected: ["f2"])))
        // A shard not marked as a block must have the cluster's columns.
        #expect(membership.admit(Self.hello("c", columns: ["f2", "f3"]), reference: nil, now: 0).isFailure)
    }

    @Test("the worker limit counts live workers; a restart of a live one is not a new worker")
    func limit() throws {
        var membership = Membership(settings: .init(maxWorkers: 2))
        try Self.join(&membership, Self.hello("a"))
        try Self.join(&membership, Self.hello("b", pid: 200))
        #expect(membership.admit(Self.hello("c", pid: 300), reference: nil, now: 0) == .failure(.full(live: 2)))
        #expect(!membership.admit(Self.hello("a"), reference: nil, now: 0).isFailure)
        _ = membership.markDead(2, inJob: true)
        #expect(!membership.admit(Self.hello("c", pid: 300), reference: nil, now: 0).isFailure)
    }

    @Test("messages need the registration's session; a dead worker is unknown; silence beyond liveness is death")
    func sessionsAndLiveness() throws {
        var membership = Membership(settings: .init(livenessSeconds: 3))
        let record = try Self.join(&membership, Self.hello("a"), now: 0, session: 42)
        #expect(membership.identify(1, session: 42, now: 2) == .known)
        #expect(record.lastSeen == 2)
        #expect(membership.identify(1, session: 41, now: 2) == .wrongSession)
        #expect(membership.identify(9, session: 42, now: 2) == .unknown)
        #expect(membership.silent(now: 4.9).isEmpty)
        #expect(membership.silent(now: 5.1) == [1])
        // Parked at the barrier, it waits for the master: not silent.
        record.pendingPull = WorkerRecord.PendingPull(peer: try .init([1]), requestID: 1, clock: 0, since: 2)
        #expect(membership.silent(now: 60).isEmpty)
        record.subscribed = true
        #expect(membership.markDead(1, inJob: false) === record)
        #expect(record.pendingPull == nil && !record.alive)
        #expect(membership.markDead(1, inJob: false) == nil)
        #expect(membership.identify(1, session: 42, now: 6) == .unknown)
    }

    @Test("the master's own stall does not count against its workers' liveness")
    func masterStallExcused() throws {
        var membership = Membership(settings: .init(livenessSeconds: 3))
        try Self.join(&membership, Self.hello("a"), now: 0, session: 42)
        // Busy for 4 s (their heartbeats queued meanwhile): not silent just after, silent once it is real.
        membership.excuse(seconds: 4)
        #expect(membership.silent(now: 5).isEmpty)
        #expect(membership.silent(now: 7.1) == [1])
    }

    @Test(
        "a dead worker that never finished the handshake is forgotten at once; others after the retention, or beyond the cap"
    )
    func forgetting() throws {
        var membership = Membership(settings: .init(maxWorkers: 2, livenessSeconds: 1))
        let early = try Self.join(&membership, Self.hello("early"))
        _ = membership.markDead(early.id, inJob: false)
        #expect(membership[early.id] == nil)
        var ids: [UInt32] = []
        for (index, name) in ["a", "b", "c", "d", "e", "f"].enumerated() {
            let record = try Self.join(&membership, Self.hello(name, pid: UInt32(index + 1)), now: Double(index))
            record.subscribed = true
            _ = membership.markDead(record.id, inJob: false)
            ids.append(record.id)
        }
        // Six dead records: kept up to twice the limit (4), the oldest forgotten first.
        membership.prune(now: 6)
        #expect(membership.records.count == 4)
        #expect(membership[ids[0]] == nil && membership[ids[1]] == nil && membership[ids[5]] != nil)
        // After the retention (60 s at least) none is left.
        membership.prune(now: 100)
        #expect(membership.records.isEmpty)
        #expect(membership.listing().isEmpty)
    }

    @Test("ready workers are the subscribed live ones, in id order; the listing caps dead records")
    func readyAndListing() throws {
        var membership = Membership(settings: .init())
        for (index, name) in ["c", "a", "b"].enumerated() {
            try Self.join(&membership, Self.hello(name, pid: UInt32(index + 1)))
        }
        #expect(membership.ready.isEmpty && membership.awaitingSubscription)
        membership[3]?.subscribed = true
        membership[1]?.subscribed = true
        #expect(membership.ready.map(\.id) == [1, 3])
        membership[2]?.subscribed = true
        #expect(!membership.awaitingSubscription)
        _ = membership.markDead(2, inJob: false)
        #expect(membership.listing(deadLimit: 0).map(\.id) == [1, 3])
        #expect(membership.listing(deadLimit: 5).map(\.id) == [1, 2, 3])
        #expect(membership.subscribed(named: ["a", "b", "c"]) == [1, 3])
    }
}

extension Result {
    var isFailure: Bool { if case .failure = self { true } else { false } }
}
