import ChimeraML
import ChimeraWire

/// Who is in the cluster, and the rules of joining and leaving: registration (columns, names in use,
/// restarts, the worker limit), sessions, liveness and forgetting the dead. A state machine with no
/// I/O: time is passed in, and the master's loop acts on the decisions (replies, a job's barrier).
struct Membership {
    struct Settings {
        var maxWorkers = 1_024
        /// Silence after which a live worker is declared dead (heartbeat interval × liveness).
        var livenessSeconds = 3.0
        /// Dead records are kept this long (for status and reports), then forgotten.
        var retentionSeconds: Double { max(60, 10 * livenessSeconds) }
    }

    /// What a WorkerHello says, with the column names normalised.
    struct Hello {
        var name: String
        var featureNames: [String]
        var rows: Int
        var labels: [Float] = []
        var labelNames: [String] = []
        var moments: ColumnMoments?
        var pid: UInt32 = 0
        var host = ""
        /// A block of a data set's columns: others may hold other columns.
        var columnBlock = false
    }

    /// Why a hello is refused; each is counted under `metric` and answered with `code`.
    enum Refusal: Error, Equatable {
        case malformed
        case columnsDiffer(missing: [String], unexpected: [String])
        /// Another live process holds the name (pid or host differ).
        case nameInUse(pid: UInt32, host: String, seenSecondsAgo: Double)
        case full(live: Int)

        var metric: String {
            switch self {
            case .malformed: "bad_hello"
            case .columnsDiffer: "mismatched_columns"
            case .nameInUse: "name_in_use"
            case .full: "too_many_workers"
            }
        }

        var code: Chimera_V1_ErrorCode {
            switch self {
            case .malformed: .badRequest
            case .columnsDiffer: .unknownColumn
            case .nameInUse: .nameInUse
            case .full: .limit
            }
        }

        func message(name: String, maxWorkers: Int) -> String {
            switch self {
            case .malformed: "hello needs a name, feature names and rows"
            case .columnsDiffer(let missing, let unexpected):
                "\(name): columns differ from the cluster's: missing \(missing), unexpected \(unexpected)"
            case .nameInUse(let pid, let host, let seen):
                "a worker named \(name) is registered (pid \(pid) on \(host.isEmpty ? "?" : host), seen \(Self.oneDecimal(seen)) s ago): this one waits until it leaves or is declared dead; give it another name to run both"
            case .full: "the master has its maximum of \(maxWorkers) live workers (--max-workers)"
            }
        }

        static func oneDecimal(_ value: Double) -> String {
            let tenths = Int((value * 10).rounded())
            return "\(tenths / 10).\(abs(tenths % 10))"
        }
    }

    /// A hello that may register: under `id` (a restarted worker keeps its old one). `restarting`:
    /// the name's previous registration is still alive and must be declared dead first (it was this
    /// worker before a restart).
    struct Admission: Equatable {
        let id: UInt32
        let restarting: Bool
    }

    /// Whether a message comes from a registered worker's current registration.
    enum Identity: Equatable {
        case known
        case unknown
        case wrongSession
    }

    let settings: Settings
    /// Every worker the master knows, alive or recently dead, by id.
    private(set) var records: [UInt32: WorkerRecord] = [:]
    private var nextID: UInt32 = 1

    init(settings: Settings) { self.settings = settings }

    subscript(_ id: UInt32) -> WorkerRecord? { records[id] }

    var live: Int { records.values.reduce(0) { $0 + ($1.alive ? 1 : 0) } }

    /// Workers that completed the broadcast handshake, in id order: the participants of a new job.
    var ready: [WorkerRecord] { records.values.filter { $0.alive && $0.subscribed }.sorted { $0.id < $1.id } }

    /// Whether a live worker still has to confirm its broadcast subscription.
    var awaitingSubscription: Bool { records.values.contains { $0.alive && !$0.subscribed } }

    /// Decides a hello. `reference`: the columns every worker must have (the running job's; nil: those
    /// of any other live worker).
    mutating func admit(_ hello: Hello, reference: [String]?, now: Double) -> Result<Admission, Refusal> {
        guard !hello.name.isEmpty, !hello.featureNames.isEmpty, hello.rows > 0 else { return .failure(.malformed) }
        // Without a job: the columns of the other live workers; a column block may instead hold none of
        // theirs (another block of the data, for a feature-partitioned fit), but not part of them.
        let others = records.values.filter { $0.alive && $0.name != hello.name }.map(\.featureNames)
        let offered = Set(hello.featureNames)
        let columns =
            reference
            ?? (!hello.columnBlock
                ? others.first
                : others.contains(hello.featureNames) || others.allSatisfy { offered.isDisjoint(with: $0) }
                    ? nil : others.first { !offered.isDisjoint(with: $0) })
        if let columns, columns != hello.featureNames {
            return .failure(
                .columnsDiffer(
                    missing: Set(columns).subtracting(hello.featureNames).sorted(),
                    unexpected: Set(hello.featureNames).subtracting(columns).sorted()))
        }
        let holder = records.values.first { $0.name == hello.name && $0.alive }
        // A worker restarted under the same name takes over its old identity; another live process
        // under a name in use waits (two processes sharing one identity would push twice per round).
        // Without a pid on either side a restart cannot be told apart: it takes the name over.
        if let holder, holder.pid != 0, hello.pid != 0, holder.pid != hello.pid || holder.host != hello.host {
            return .failure(.nameInUse(pid: holder.pid, host: holder.host, seenSecondsAgo: now - holder.lastSeen))
        }
        if holder == nil, live >= settings.maxWorkers { return .failure(.full(live: live)) }
        prune(now: now, keeping: hello.name)
        if let previous = records.values.first(where: { $0.name == hello.name }) {
            return .success(Admission(id: previous.id, restarting: previous.alive))
        }
        defer { nextID += 1 }
        return .success(Admission(id: nextID, restarting: false))
    }

    /// Records an admitted worker (after its previous registration, if any, was declared dead).
    mutating func register(_ hello: Hello, as admission: Admission, session: UInt64, now: Double) -> WorkerRecord {
        let record = WorkerRecord(
            id: admission.id, name: hello.name, rows: hello.rows, featureNames: hello.featureNames,
            labels: hello.labels,
            labelNames: Array(Set(hello.labelNames)).sorted(), moments: hello.moments, pid: hello.pid, host: hello.host,
            lastSeen: now, session: session)
        records[admission.id] = record
        return record
    }

    /// Checks a worker message's id and session; a known worker counts as seen now.
    func identify(_ id: UInt32, session: UInt64, now: Double) -> Identity {
        guard let record = records[id], record.alive else { return .unknown }
        guard record.session == session else { return .wrongSession }
        record.lastSeen = now
        return .known
    }

    /// Declares a worker dead; returns its record when it was alive (the caller takes it out of the
    /// job). One that never finished the handshake and is in no job is forgotten at once (a crowd of
    /// one-off hellos); a real worker that died that early just registers again.
    mutating func markDead(_ id: UInt32, inJob: Bool) -> WorkerRecord? {
        guard let record = records[id], record.alive else { return nil }
        record.alive = false
        record.pendingPull = nil
        if !record.subscribed && !inJob { records[id] = nil }
        return record
    }

    /// Live workers silent for longer than the liveness period (a worker parked at the barrier is
    /// waiting for the master, not silent).
    /// The master itself was busy for `seconds` (saving a large model, say) and heard no one: that
    /// time does not count against the live workers, whose heartbeats wait in its queue.
    func excuse(seconds: Double) {
        for record in records.values where record.alive { record.lastSeen += seconds }
    }

    func silent(now: Double) -> [UInt32] {
        records.values.filter { $0.alive && $0.pendingPull == nil && now - $0.lastSeen > settings.livenessSeconds }.map(
            \.id
        ).sorted()
    }

    /// Forgets workers dead for longer than the retention, and the oldest dead ones at once when there
    /// are more records than twice the worker limit. A dead worker has left any job already.
    mutating func prune(now: Double, keeping name: String? = nil) {
        var dead = records.values.filter { !$0.alive && $0.name != name }
        guard !dead.isEmpty else { return }
        for record in dead where now - record.lastSeen > settings.retentionSeconds { records[record.id] = nil }
        let excess = records.count - 2 * settings.maxWorkers
        guard excess > 0 else { return }
        dead = dead.filter { records[$0.id] != nil }.sorted { $0.lastSeen < $1.lastSeen }
        for record in dead.prefix(excess) { records[record.id] = nil }
    }

    /// Every live worker and the `deadLimit` most recently seen dead ones, in id order (a status
    /// answer stays small).
    func listing(deadLimit: Int = 256) -> [WorkerRecord] {
        var listed = records.values.filter(\.alive)
        let dead = records.values.filter { !$0.alive }
        listed += dead.count <= deadLimit ? dead : Array(dead.sorted { $0.lastSeen > $1.lastSeen }.prefix(deadLimit))
        return listed.sorted { $0.id < $1.id }
    }

    /// The sum of every worker's barrier wait (reports).
    var barrierWaitSeconds: Double { records.values.reduce(0) { $0 + $1.barrierWaitSeconds } }

    /// The live workers named in `names` that finished the handshake (a fan-out's recipients).
    func subscribed(named names: Set<String>) -> Set<UInt32> {
        Set(records.values.filter { $0.alive && $0.subscribed && names.contains($0.name) }.map(\.id))
    }
}
