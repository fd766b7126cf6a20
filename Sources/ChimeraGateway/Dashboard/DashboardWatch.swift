import ChimeraCluster
import ChimeraWire
import Foundation

/// What the dashboard's followers have been told, as a pure state machine: each poll of the master
/// (its cluster status and the current job's status) goes in, the events it implies come out —
/// workers that joined, died or came back, the job's progress and new losses, a job's end. The
/// `EventHub` owns the polling and the streams.
struct DashboardWatch: Sendable {
    /// Jobs kept in the list (newest first).
    static let recentJobs = 20
    /// Losses kept for the snapshot of a late follower (the oldest are thinned out beyond it).
    static let keptLosses = 4096

    private(set) var cluster: DashboardEvent.ClusterEntry?
    private(set) var jobs: [DashboardEvent.JobEntry] = []
    private(set) var progress: DashboardEvent.Progress?
    private(set) var losses: DashboardEvent.Losses?
    private(set) var masterReachable = false
    private var lastBytes: (total: UInt64, time: Double)?

    var snapshot: DashboardEvent.Snapshot {
        DashboardEvent.Snapshot(
            cluster: cluster, jobs: jobs, progress: progress, losses: losses, masterReachable: masterReachable)
    }

    /// When the last cluster event went out: one a second keeps clocks and silences fresh.
    private var clusterSentAt = -Double.infinity

    /// The last loss followers have of `job` (0: none yet): the next poll asks for those after it.
    func lossesAfter(job: UInt64) -> UInt64 {
        guard let losses, losses.jobID == Int(job) else { return 0 }
        return UInt64(losses.points.last?.first ?? 0)
    }

    mutating func unreachable() { masterReachable = false }

    /// One poll: `job` is the status of the cluster's current (or last) job, nil when there is none.
    mutating func observe(status: Chimera_V1_ClusterStatus, job: Chimera_V1_JobStatus?, now: Double)
        -> [DashboardEvent]
    {
        masterReachable = true
        var events: [DashboardEvent] = []
        let first = cluster == nil
        let view = ClusterView(status)
        let total = status.bytesSent + status.bytesReceived
        var rate = 0.0
        if let last = lastBytes, now > last.time, total >= last.total {
            rate = Double(total - last.total) / (now - last.time)
        }
        lastBytes = (total, now)
        // Workers: joins, deaths and returns against the last poll.
        let before = Dictionary((cluster?.workers ?? []).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for worker in view.workers {
            let change: String? =
                switch (before[worker.id]?.alive, worker.alive) {
                case (nil, true): "joined"
                case (true?, false): "died"
                case (false?, true): "returned"
                default: nil
                }
            if let change, !first {
                events.append(.worker(DashboardEvent.WorkerChange(change: change, worker: worker, time: now)))
            }
        }
        let entry = DashboardEvent.ClusterEntry(
            mode: view.mode, workers: view.workers, servers: view.servers ?? [], bytesPerSecond: rate,
            rejectedMessages: view.rejectedMessages, time: now)
        if cluster.map({ !Self.sameWorkers($0, entry) }) ?? true || now - clusterSentAt >= 1 {
            events.append(.cluster(entry))
            clusterSentAt = now
        }
        cluster = entry
        guard let job, job.jobID > 0 else { return events }
        let jobEntry = DashboardEvent.JobEntry(
            job, mode: view.fitMode, iterationsPerSecond: job.state == .running ? status.iterationsPerSecond : 0)
        // New losses (the master answers those after the last one asked for).
        if !job.losses.isEmpty {
            let points = job.losses.map { [Double($0.iteration), $0.seconds, $0.loss] }
            if losses?.jobID != jobEntry.jobID { losses = DashboardEvent.Losses(jobID: jobEntry.jobID, points: []) }
            losses!.points += points
            if losses!.points.count > Self.keptLosses {
                // Every other old point: the curve keeps its shape and the snapshot its size.
                let old = losses!.points.count - Self.keptLosses / 2
                losses!.points =
                    stride(from: 0, to: old, by: 2).map { losses!.points[$0] } + losses!.points[old...]
            }
            events.append(.loss(DashboardEvent.Losses(jobID: jobEntry.jobID, points: points)))
        } else if losses?.jobID != jobEntry.jobID {
            losses = DashboardEvent.Losses(jobID: jobEntry.jobID, points: [])
        }
        let wall = max(job.report.wallSeconds, 1e-9)
        let clocks = job.report.clocks.map {
            DashboardEvent.WorkerProgress(
                worker: $0.name, clock: Int($0.clock), alive: $0.alive, barrierWaitSeconds: $0.barrierWaitSeconds,
                barrierWaitShare: min($0.barrierWaitSeconds / wall, 1))
        }
        let previous = jobs.first { $0.jobID == jobEntry.jobID }
        if let index = jobs.firstIndex(where: { $0.jobID == jobEntry.jobID }) { jobs.remove(at: index) }
        jobs.insert(jobEntry, at: 0)
        if jobs.count > Self.recentJobs { jobs.removeLast(jobs.count - Self.recentJobs) }
        let running = jobEntry.state == "running" || jobEntry.state == "queued"
        if running || previous?.state != jobEntry.state {
            let update = DashboardEvent.Progress(
                job: jobEntry, clocks: clocks, stalenessHistogram: job.stalenessHistogram.map { Int($0) },
                bytesPerSecond: rate, time: now)
            progress = update
            events.append(.progress(update))
        }
        // A job seen running that is over now, or one that ended between two polls.
        if !running, previous.map({ $0.state == "running" || $0.state == "queued" }) ?? !first {
            events.append(.jobEnd(jobEntry))
        }
        return events
    }

    /// Whether two cluster entries show the same workers (clocks and silences move every poll:
    /// those travel with `progress`, and a cluster event every second keeps them fresh).
    private static func sameWorkers(_ a: DashboardEvent.ClusterEntry, _ b: DashboardEvent.ClusterEntry) -> Bool {
        guard a.mode == b.mode, a.workers.count == b.workers.count,
            a.servers.map({ [$0.name, "\($0.shard ?? -1)"] }) == b.servers.map({ [$0.name, "\($0.shard ?? -1)"] })
        else { return false }
        return zip(a.workers, b.workers).allSatisfy {
            $0.id == $1.id && $0.alive == $1.alive && $0.ready == $1.ready && $0.stage == $1.stage
        }
    }
}
