package import ChimeraWire
public import Foundation

/// The cluster as the gateway answers `GET /v1/chimera/cluster` and `chimera http` reads it: one
/// Codable definition for both sides (and for `chimera status`), no protobuf type.
public struct ClusterView: Codable, Sendable, Equatable {
    public struct Worker: Codable, Sendable, Equatable {
        public var id: Int
        public var name: String
        public var alive: Bool
        public var ready: Bool
        public var clock: Int
        public var pid: Int
        public var host: String
        /// Its stage in a running pipeline job.
        public var stage: String?
        /// Rows of its shard.
        public var rows: Int?
        /// Seconds since the master last heard from it (alive workers).
        public var silentSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case id, name, alive, ready, clock, pid, host, stage, rows
            case silentSeconds = "silent_seconds"
        }
    }

    /// A parameter server (`chimera server`) and the range it holds in the running job.
    public struct Server: Codable, Sendable, Equatable {
        public var name: String
        public var endpoint: String
        public var host: String
        public var pid: Int
        public var silentSeconds: Double
        /// Its shard and parameters [start, end) in the running job (nil: it holds none).
        public var shard: Int?
        public var start: Int?
        public var end: Int?

        enum CodingKeys: String, CodingKey {
            case name, endpoint, host, pid, shard, start, end
            case silentSeconds = "silent_seconds"
        }
    }

    /// `parameter-server` or `aggregation`.
    public var mode: String
    public var workers: [Worker]
    /// The registered parameter servers (absent from older gateways' answers).
    public var servers: [Server]?
    /// The running job, or the last one when idle (0 before the first).
    public var jobID: Int
    /// `running`, or the last job's end state (`none` before the first).
    public var jobState: String
    public var iteration: Int
    public var loss: Double
    public var rejectedMessages: Int
    public var rejectedByKind: [String: Int]

    enum CodingKeys: String, CodingKey {
        case mode, workers, servers, iteration, loss
        case jobID = "job_id"
        case jobState = "job_state"
        case rejectedMessages = "rejected_messages"
        case rejectedByKind = "rejected_by_kind"
    }

    public var isAggregation: Bool { mode == FitMode.aggregation.rawValue }
    public var fitMode: FitMode { isAggregation ? .aggregation : .parameterServer }
    public var readyWorkers: Int { workers.filter(\.ready).count }

    package init(_ status: Chimera_V1_ClusterStatus) {
        mode = status.mode == .aggregation ? FitMode.aggregation.rawValue : FitMode.parameterServer.rawValue
        workers = status.workers.map {
            Worker(
                id: Int($0.workerID), name: $0.name, alive: $0.alive, ready: $0.ready, clock: Int($0.clock),
                pid: Int($0.pid),
                host: $0.host, stage: $0.stage.isEmpty ? nil : $0.stage, rows: Int($0.rows),
                silentSeconds: $0.alive ? $0.silentSeconds : nil)
        }
        servers = status.servers.map {
            Server(
                name: $0.name, endpoint: $0.endpoint, host: $0.host, pid: Int($0.pid), silentSeconds: $0.silentSeconds,
                shard: $0.inJob ? Int($0.shard) : nil, start: $0.inJob ? Int($0.start) : nil,
                end: $0.inJob ? Int($0.end) : nil)
        }
        jobID = Int(status.currentJobID)
        jobState = JobView.stateName(status.currentJobState)
        iteration = Int(status.iteration)
        loss = status.loss
        rejectedMessages = Int(status.rejectedMessages)
        rejectedByKind = status.rejectedByKind.mapValues { Int($0) }
    }
}

/// A job as `GET /v1/chimera/jobs/ID` answers it and `chimera http fit` follows it.
public struct JobView: Codable, Sendable, Equatable {
    public struct Clock: Codable, Sendable, Equatable {
        public var worker: String
        public var clock: Int
        public var alive: Bool
    }

    public var jobID: Int
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    public var state: String
    public var iteration: Int
    public var loss: Double
    public var clocks: [Clock]
    public var stalenessHistogram: [Int]
    public var wallSeconds: Double
    /// Bagging: trees in the ensemble.
    public var members: Int?
    public var failedWorkers: [String]?
    public var error: String?
    public var backoffs: [String]?

    enum CodingKeys: String, CodingKey {
        case state, iteration, loss, clocks, members, error, backoffs
        case jobID = "job_id"
        case stalenessHistogram = "staleness_histogram"
        case wallSeconds = "wall_seconds"
        case failedWorkers = "failed_workers"
    }

    public var isRunning: Bool { state == "running" || state == "queued" }

    init(_ status: Chimera_V1_JobStatus) {
        jobID = Int(status.jobID)
        state = Self.stateName(status.state)
        iteration = Int(status.iteration)
        loss = status.loss
        clocks = status.clocks.map { Clock(worker: $0.name, clock: Int($0.clock), alive: $0.alive) }
        stalenessHistogram = status.stalenessHistogram.map { Int($0) }
        wallSeconds = status.report.wallSeconds
        members = status.report.members > 0 ? Int(status.report.members) : nil
        failedWorkers = status.report.failedWorkers.isEmpty ? nil : status.report.failedWorkers
        error = status.error.isEmpty ? nil : status.error
        backoffs = status.report.backoffs.isEmpty ? nil : status.report.backoffs
    }

    package static func stateName(_ state: Chimera_V1_JobState) -> String {
        switch state {
        case .queued: "queued"
        case .running: "running"
        case .succeeded: "succeeded"
        case .failed: "failed"
        case .cancelled: "cancelled"
        default: "none"
        }
    }
}

/// `POST /v1/chimera/jobs`'s answer (202).
public struct JobStarted: Codable, Sendable, Equatable {
    public var jobID: Int
    public var state: String

    enum CodingKeys: String, CodingKey {
        case state
        case jobID = "job_id"
    }

    public init(jobID: Int, state: String) {
        self.jobID = jobID
        self.state = state
    }
}

/// `/healthz` and `/readyz`.
public struct HealthView: Codable, Sendable, Equatable {
    public var status: String
    public var master: String
    public var readyWorkers: Int?

    enum CodingKeys: String, CodingKey {
        case status, master
        case readyWorkers = "ready_workers"
    }

    public init(status: String, master: String, readyWorkers: Int? = nil) {
        self.status = status
        self.master = master
        self.readyWorkers = readyWorkers
    }
}

/// A fit started as a job: its id and the token that cancels it.
public struct StartedJob: Sendable, Equatable {
    public let id: UInt64
    public let token: UInt64
}

extension MasterClient {
    /// The cluster, without protobuf types.
    public func cluster(timeoutMilliseconds: Int32 = 10_000) throws -> ClusterView {
        ClusterView(try status(timeoutMilliseconds: timeoutMilliseconds))
    }

    /// A job's progress, or the last job's outcome (`id` 0: the current or last job).
    public func job(_ id: UInt64, timeoutMilliseconds: Int32 = 10_000) throws -> (view: JobView, report: FitReportView)
    {
        let status = try jobStatus(id, timeoutMilliseconds: timeoutMilliseconds)
        return (JobView(status), FitReportView(id: status.jobID, state: status.state, report: status.report))
    }

    /// Starts a fit with `settings` as a job of the master's mode `mode`; returns at once.
    public func startFit(_ settings: FitSettings, mode: FitMode, timeoutMilliseconds: Int32 = 30_000) throws
        -> StartedJob
    {
        var request = Chimera_V1_FitRequest()
        request.kind = mode == .aggregation ? .aggregation : .parameterServer
        request.asynchronous = true
        request.config = try settings.wire(mode: mode)
        let reply = try fit(request, timeoutMilliseconds: timeoutMilliseconds)
        return StartedJob(id: reply.jobID, token: reply.jobToken)
    }
}

/// A fit's report (what `chimera fit` prints), without protobuf types.
public struct FitReportView: Sendable, Equatable {
    public struct WorkerLine: Sendable, Equatable {
        public var name: String
        public var workerID: UInt32
        public var clock: UInt64
        public var alive: Bool
        public var barrierWaitSeconds: Double
    }

    /// A pipeline stage's account of the fit.
    public struct StageLine: Sendable, Equatable {
        public var worker: String
        public var replica: UInt32
        public var stage: UInt32
        public var layers: String
        public var parameters: UInt64
        public var computeSeconds: Double
        public var idleSeconds: Double
        public var idleFraction: Double
        public var bytesSent: UInt64
        public var peakMicroBatches: UInt32
        public var peakActivationBytes: UInt64
    }

    public var jobID: UInt64
    public var state: String
    public var iterations: UInt64
    public var finalLoss: Double
    public var wallSeconds: Double
    public var secondsPerIteration: Double
    public var barrierWaitSeconds: Double
    public var stalenessHistogram: [UInt64]
    public var bytesSent: UInt64
    public var bytesReceived: UInt64
    /// The master's bytes sent and received per iteration (what `--wire-dtype` halves).
    public var bytesPerIteration: Double
    public var workers: [WorkerLine]
    public var failedWorkers: [String]
    public var backoffs: [String]
    /// Bagging: trees in the ensemble (0 for a parameter-server fit).
    public var members: UInt32
    /// Pipeline fits: one line per stage, replica by replica.
    public var stages: [StageLine]

    init(id: UInt64, state: Chimera_V1_JobState, report r: Chimera_V1_FitReport) {
        jobID = id
        self.state = JobView.stateName(state)
        iterations = r.iterations
        finalLoss = r.finalLoss
        wallSeconds = r.wallSeconds
        secondsPerIteration = r.secondsPerIteration
        barrierWaitSeconds = r.barrierWaitSeconds
        stalenessHistogram = r.stalenessHistogram
        bytesSent = r.bytesSent
        bytesReceived = r.bytesReceived
        bytesPerIteration = r.iterations > 0 ? Double(r.bytesSent + r.bytesReceived) / Double(r.iterations) : 0
        workers = r.clocks.map {
            WorkerLine(
                name: $0.name, workerID: $0.workerID, clock: $0.clock, alive: $0.alive,
                barrierWaitSeconds: $0.barrierWaitSeconds)
        }
        failedWorkers = r.failedWorkers
        backoffs = r.backoffs
        members = r.members
        stages = r.stages.map {
            StageLine(
                worker: $0.worker, replica: $0.replica, stage: $0.stage, layers: $0.layers, parameters: $0.parameters,
                computeSeconds: $0.computeSeconds, idleSeconds: $0.idleSeconds, idleFraction: $0.idleFraction,
                bytesSent: $0.bytesSent, peakMicroBatches: $0.peakMicroBatches,
                peakActivationBytes: $0.peakActivationBytes)
        }
    }
}

/// The JSON coders of these views on both sides of HTTP: sorted keys, and a non-finite loss (a
/// diverged fit) written as the strings "NaN" / "Infinity" rather than failing the answer.
public enum ViewCoding {
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }

    public static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return decoder
    }
}

extension MasterProbe {
    /// The cluster as the probe last saw it (nil before its first answer).
    public var lastCluster: ClusterView? { lastStatus.map(ClusterView.init) }
}
