import ChimeraWire
import ZeroMQ

/// The parameter servers registered with the master (`chimera server`): who they are, their
/// sessions and liveness, and each one's parked event poll. Decisions without I/O.
struct ServerRegistry {
    final class Record {
        let id: UInt32
        let name: String
        let endpoint: String
        let publicKey: String
        let host: String
        let pid: UInt32
        let session: UInt64
        var lastSeen: Double
        /// A poll waiting for events: answered when the job has some, or empty after the interval.
        var pendingPoll: (peer: Frame, requestID: UInt64, jobID: UInt64, after: Int, since: Double)?

        init(id: UInt32, hello: Chimera_V1_ServerHello, session: UInt64, now: Double) {
            self.id = id
            name = hello.name
            endpoint = hello.endpoint
            publicKey = hello.publicKey
            host = hello.host
            pid = hello.pid
            self.session = session
            lastSeen = now
        }
    }

    private(set) var servers: [UInt32: Record] = [:]
    private var nextID: UInt32 = 1

    /// Registers a server; one already registered under the same name is replaced (it restarted)
    /// and returned as `replaced`.
    mutating func register(_ hello: Chimera_V1_ServerHello, session: UInt64, now: Double) -> (
        record: Record, replaced: Record?
    ) {
        let replaced = servers.values.first { $0.name == hello.name }
        if let replaced { servers[replaced.id] = nil }
        let record = Record(id: nextID, hello: hello, session: session, now: now)
        nextID += 1
        servers[record.id] = record
        return (record, replaced)
    }

    /// The server `id` when `session` is its registration's.
    func identify(_ id: UInt32, session: UInt64) -> Record? {
        guard let record = servers[id], record.session == session else { return nil }
        return record
    }

    /// Servers not heard from for `seconds`: removed and returned.
    mutating func removeSilent(now: Double, seconds: Double) -> [Record] {
        let silent = servers.values.filter { now - $0.lastSeen > seconds }
        for record in silent { servers[record.id] = nil }
        return silent.sorted { $0.id < $1.id }
    }

    /// The live servers in a stable order (by name), the first `count` of which a sharded job takes.
    var byName: [Record] { servers.values.sorted { $0.name < $1.name } }

    /// Splits `count` parameters into `shards` contiguous ranges of (nearly) equal bytes: every
    /// parameter is a float32, so equal counts are equal bytes.
    static func ranges(count: Int, shards: Int) -> [Range<Int>] {
        (0..<shards).map { ($0 * count / shards)..<(($0 + 1) * count / shards) }
    }
}
