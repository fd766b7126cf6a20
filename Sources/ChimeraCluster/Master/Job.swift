import ChimeraML
import ChimeraWire
import SwiftProtobuf
import ZeroMQ

/// A running parameter-server job and what its report needs.
struct Job {
    let id: UInt64
    var state: ParameterServerState
    let featureNames: [String]
    let classes: [Float]
    /// Class names when the labels are names (`classes` then 0…K−1).
    let classNames: [String]
    let standardizer: Standardizer?
    let startedAt: Double
    let bytesAtStart: (sent: Int, received: Int)
    /// The client waiting for a synchronous fit's reply.
    var client: (peer: Frame, requestID: UInt64)?
    var failedWorkers: Set<String> = []
    var lastCheckpoint = 0
    /// Backoffs already logged (the state machine counts them).
    var backoffsLogged = 0
    /// Per-iteration records for tuning runs (FitConfig.record_timeline).
    var recordTimeline = false
    var recordWeights = false
    var timeline: [Chimera_V1_IterationRecord] = []
    /// When each loss of `state.lossHistory` was measured (seconds since the start), for followers.
    var lossSeconds: [Double] = []
    /// Pipeline jobs: the stages (only their workers take part).
    var pipeline: PipelineJob?
    /// Feature-partitioned jobs: the column blocks and the margins being summed.
    var features: FeatureJob?
    /// Sharded jobs: the parameter servers holding the weights, and the events they replay.
    var shards: ShardedJob?

    /// The JobStart broadcast (and the `current_job` of a late joiner's Welcome).
    func start(startClock: Int) -> Chimera_V1_JobStart {
        Chimera_V1_JobStart.with {
            $0.jobID = id
            $0.kind = .parameterServer
            $0.config = state.configuration.wire
            $0.featureNames = featureNames
            $0.classes = classes.map(Double.init)
            $0.classNames = classNames
            $0.startClock = UInt64(startClock)
            if let pipeline { $0.pipeline = pipeline.wire }
            if let features { $0.featurePartition = features.wire }
            if let shards { $0.servers = shards.wire }
        }
    }

    /// The standardisation tensors that travel with JobStart.
    var standardizerTensors: [NamedTensor] {
        guard let standardizer else { return [] }
        return [NamedTensor("mean", .float32(standardizer.mean)), NamedTensor("scale", .float32(standardizer.scale))]
    }
}

/// What remains of a finished job for JobStatus.
struct JobSummary {
    let id: UInt64
    let state: Chimera_V1_JobState
    let report: Chimera_V1_FitReport
    let error: String
    let lossHistory: [Double]
    var lossSeconds: [Double] = []
    var config = Chimera_V1_FitConfig()
}

/// Where a reply goes: a peer's routing id and the request it answers.
struct ClientAddress {
    let peer: Frame
    let requestID: UInt64
}
