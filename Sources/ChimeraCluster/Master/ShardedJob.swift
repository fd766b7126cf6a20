import ChimeraML
import ChimeraWire
import SwiftProtobuf

/// A sharded job's servers and the event log they replay (the master's state machine decides, the
/// servers hold and step the weights: proto/README.md, "Parameter servers").
struct ShardedJob {
    struct Shard {
        let server: UInt32
        let name: String
        let endpoint: String
        let publicKey: String
        let range: Range<Int>
    }

    let shards: [Shard]
    /// The weights and optimizer state the job starts from (each server gets its range once).
    let initial: [Float]
    let initialOptimizer: OptimizerState?
    let startIteration: Int
    /// Events `base ..< base + log.count` of the job (those every server has replayed are dropped).
    private(set) var log: [Chimera_V1_ReplicaEvent] = []
    private(set) var base = 0
    /// How many events each server has replayed (from its last poll).
    var replayed: [UInt32: Int] = [:]
    /// Snapshots asked for and the ranges received: tag → (iteration, shard index → range).
    var snapshots: [UInt64: (iteration: Int, ranges: [Int: (weights: [Float], optimizer: OptimizerState?)])] = [:]
    var checkpointTag: UInt64?
    /// The job ended and waits for its servers' final ranges before it reports.
    var finishing: (state: Chimera_V1_JobState, error: String, code: Chimera_V1_ErrorCode)?
    var finalTag: UInt64?
    var finishingSince = 0.0
    /// The final ranges are in: the job may report.
    var collected = false
    /// The optimizer state joined from the servers' last snapshot (for checkpoints and the model).
    var optimizer: OptimizerState?

    init(shards: [Shard], initial: [Float], initialOptimizer: OptimizerState?, startIteration: Int) {
        self.shards = shards
        self.initial = initial
        self.initialOptimizer = initialOptimizer
        self.startIteration = startIteration
    }

    var eventCount: Int { base + log.count }

    func shardIndex(of server: UInt32) -> Int? { shards.firstIndex { $0.server == server } }

    mutating func append(_ events: [Chimera_V1_ReplicaEvent]) { log += events }

    /// Asks every server for its range once it has replayed what came before; returns the tag.
    mutating func snapshot(iteration: Int) -> UInt64 {
        let tag = UInt64(eventCount)
        var event = Chimera_V1_ReplicaEvent()
        event.kind = .snapshot
        event.clock = tag
        log.append(event)
        snapshots[tag] = (iteration, [:])
        return tag
    }

    /// The events after the first `after` (nil: they were dropped already, the server lost its place).
    func events(after: Int) -> ArraySlice<Chimera_V1_ReplicaEvent>? {
        guard after >= base else { return nil }
        return log[min(after - base, log.count)...]
    }

    /// Drops the events every server has replayed.
    mutating func trim() {
        guard replayed.count == shards.count, let lowest = replayed.values.min(), lowest > base else { return }
        log.removeFirst(min(lowest - base, log.count))
        base = lowest
    }

    /// A server's range for snapshot `tag`; returns the whole snapshot once every range is in.
    mutating func receive(tag: UInt64, shard: Int, weights: [Float], optimizer: OptimizerState?) -> (
        iteration: Int, weights: [(Range<Int>, [Float])], optimizer: OptimizerState?
    )? {
        guard snapshots[tag] != nil else { return nil }
        snapshots[tag]!.ranges[shard] = (weights, optimizer)
        guard let done = snapshots[tag], done.ranges.count == shards.count else { return nil }
        snapshots[tag] = nil
        let ordered = shards.indices.map { done.ranges[$0]! }
        let parts = ordered.compactMap(\.optimizer)
        let joined = parts.count == shards.count ? OptimizerState.joined(parts) : nil
        return (done.iteration, shards.indices.map { (shards[$0].range, ordered[$0].weights) }, joined)
    }

    var wire: [Chimera_V1_ServerShard] {
        shards.enumerated().map { index, shard in
            Chimera_V1_ServerShard.with {
                $0.shard = UInt32(index)
                $0.endpoint = shard.endpoint
                $0.publicKey = shard.publicKey
                $0.start = UInt64(shard.range.lowerBound)
                $0.end = UInt64(shard.range.upperBound)
            }
        }
    }
}

extension ReplicaEvent {
    /// On the wire; `session` is the joining worker's.
    func wire(session: UInt64) -> Chimera_V1_ReplicaEvent {
        var out = Chimera_V1_ReplicaEvent()
        switch self {
        case .join(let worker, let rows):
            out.kind = .join
            out.worker = worker
            out.rows = UInt64(rows)
            out.session = session
        case .start(let worker, let clock):
            out.kind = .start
            out.worker = worker
            out.clock = UInt64(clock)
        case .push(let worker, let clock, let rows, let loss):
            out.kind = .push
            out.worker = worker
            out.clock = UInt64(clock)
            out.rows = UInt64(rows)
            out.loss = loss
        case .leave(let worker):
            out.kind = .leave
            out.worker = worker
        case .finish:
            out.kind = .finish
        }
        return out
    }

    /// From the wire; nil for a snapshot (not a state event) or an unknown kind.
    init?(wire: Chimera_V1_ReplicaEvent) {
        switch wire.kind {
        case .join: self = .join(worker: wire.worker, rows: Int(clamping: wire.rows))
        case .start: self = .start(worker: wire.worker, clock: Int(clamping: wire.clock))
        case .push:
            self = .push(
                worker: wire.worker, clock: Int(clamping: wire.clock), rows: Int(clamping: wire.rows), loss: wire.loss)
        case .leave: self = .leave(worker: wire.worker)
        case .finish: self = .finish
        default: return nil
        }
    }
}
