import ChimeraCluster
import ChimeraML
import ChimeraWire
import Foundation

/// What `GET /v1/chimera/events` streams (Server-Sent Events: `event: <kind>`, `data: <JSON>`), and
/// what the dashboard draws. One Codable definition per event; snake_case keys like the other views.
enum DashboardEvent: Sendable, Equatable {
    /// First on every stream: the cluster, the recent jobs, the current job's progress and losses.
    case snapshot(Snapshot)
    /// The workers, whenever anything about them changed.
    case cluster(ClusterEntry)
    /// A worker joined, died or came back.
    case worker(WorkerChange)
    /// The current job's progress (each poll while it runs).
    case progress(Progress)
    /// New training losses of a job.
    case loss(Losses)
    /// A job ended.
    case jobEnd(JobEntry)
    /// Events this stream could not take (the browser read too slowly): they were dropped.
    case dropped(Dropped)

    var name: String {
        switch self {
        case .snapshot: "snapshot"
        case .cluster: "cluster"
        case .worker: "worker"
        case .progress: "progress"
        case .loss: "loss"
        case .jobEnd: "job_end"
        case .dropped: "dropped"
        }
    }

    /// One SSE message.
    var text: String {
        let encoder = ViewCoding.encoder
        let data: Data?
        switch self {
        case .snapshot(let value): data = try? encoder.encode(value)
        case .cluster(let value): data = try? encoder.encode(value)
        case .worker(let value): data = try? encoder.encode(value)
        case .progress(let value): data = try? encoder.encode(value)
        case .loss(let value): data = try? encoder.encode(value)
        case .jobEnd(let value): data = try? encoder.encode(value)
        case .dropped(let value): data = try? encoder.encode(value)
        }
        // JSON from the encoder holds no raw newline, so one `data:` line carries it.
        return "event: \(name)\ndata: \(data.map { String(decoding: $0, as: UTF8.self) } ?? "{}")\n\n"
    }
}

extension DashboardEvent {
    struct ClusterEntry: Codable, Sendable, Equatable {
        var mode: String
        var workers: [ClusterView.Worker]
        /// The parameter servers and the ranges they hold.
        var servers: [ClusterView.Server] = []
        /// The master's bytes sent and received per second, over the last poll.
        var bytesPerSecond: Double
        var rejectedMessages: Int
        /// Seconds since the epoch (the page's clock axis).
        var time: Double

        enum CodingKeys: String, CodingKey {
            case mode, workers, servers, time
            case bytesPerSecond = "bytes_per_second"
            case rejectedMessages = "rejected_messages"
        }
    }

    struct WorkerChange: Codable, Sendable, Equatable {
        /// `joined`, `died` or `returned`.
        var change: String
        var worker: ClusterView.Worker
        var time: Double
    }

    /// A job as the dashboard lists it.
    struct JobEntry: Codable, Sendable, Equatable {
        var jobID: Int
        var state: String
        /// `parameter-server` or `aggregation`.
        var kind: String
        /// e.g. `logistic`, `mlp 64-32`, `bagging 3 trees/worker`.
        var model: String
        var algorithm: String?
        /// `0 (BSP)`, `3`, `unbounded`.
        var staleness: String?
        var parallelism: String?
        var iteration: Int
        var maxIterations: Int?
        var loss: Double
        var iterationsPerSecond: Double
        var etaSeconds: Double?
        var wallSeconds: Double
        var error: String?
        var members: Int?

        enum CodingKeys: String, CodingKey {
            case state, kind, model, algorithm, staleness, parallelism, iteration, loss, error, members
            case jobID = "job_id"
            case maxIterations = "max_iterations"
            case iterationsPerSecond = "iterations_per_second"
            case etaSeconds = "eta_seconds"
            case wallSeconds = "wall_seconds"
        }
    }

    struct WorkerProgress: Codable, Sendable, Equatable {
        var worker: String
        var clock: Int
        var alive: Bool
        var barrierWaitSeconds: Double
        /// Its barrier wait ÷ the job's wall time.
        var barrierWaitShare: Double

        enum CodingKeys: String, CodingKey {
            case worker, clock, alive
            case barrierWaitSeconds = "barrier_wait_seconds"
            case barrierWaitShare = "barrier_wait_share"
        }
    }

    struct Progress: Codable, Sendable, Equatable {
        var job: JobEntry
        var clocks: [WorkerProgress]
        /// [k]: iterations started k ahead of the slowest live worker.
        var stalenessHistogram: [Int]
        var bytesPerSecond: Double
        var time: Double

        enum CodingKeys: String, CodingKey {
            case job, clocks, time
            case stalenessHistogram = "staleness_histogram"
            case bytesPerSecond = "bytes_per_second"
        }
    }

    struct Losses: Codable, Sendable, Equatable {
        var jobID: Int
        /// [iteration, seconds since the job started, loss].
        var points: [[Double]]

        enum CodingKeys: String, CodingKey {
            case points
            case jobID = "job_id"
        }
    }

    struct Dropped: Codable, Sendable, Equatable {
        var count: Int
        var message: String
    }

    struct Snapshot: Codable, Sendable, Equatable {
        var cluster: ClusterEntry?
        /// Newest first.
        var jobs: [JobEntry]
        var progress: Progress?
        var losses: Losses?
        /// Whether the master answered the last poll.
        var masterReachable: Bool

        enum CodingKeys: String, CodingKey {
            case cluster, jobs, progress, losses
            case masterReachable = "master_reachable"
        }
    }
}

extension DashboardEvent.JobEntry {
    /// The entry of a job status (its settings, progress and end).
    init(_ status: Chimera_V1_JobStatus, mode: FitMode, iterationsPerSecond: Double) {
        jobID = Int(status.jobID)
        state = JobView.stateName(status.state)
        kind = mode.rawValue
        iteration = Int(status.iteration)
        loss = status.loss
        wallSeconds = status.report.wallSeconds
        error = status.error.isEmpty ? nil : status.error
        members = status.report.members > 0 ? Int(status.report.members) : nil
        self.iterationsPerSecond = iterationsPerSecond
        if mode == .aggregation {
            let trees = status.config.treesPerWorker
            model = "bagged trees, \(max(trees, 1)) per worker"
            return
        }
        guard let settings = try? TrainingConfiguration(wire: status.config) else {
            model = "unknown"
            return
        }
        model = settings.model.rawValue
        if settings.model == .mlp { model += " " + settings.hidden.map(String.init).joined(separator: "-") }
        algorithm = settings.algorithm.rawValue
        staleness = settings.staleness.map { $0 == 0 ? "0 (BSP)" : String($0) } ?? "unbounded"
        parallelism = settings.parallelism.rawValue
        maxIterations = settings.maxIterations
        if state == "running", iterationsPerSecond > 0 {
            etaSeconds = Double(max(settings.maxIterations - iteration, 0)) / iterationsPerSecond
        }
    }
}
