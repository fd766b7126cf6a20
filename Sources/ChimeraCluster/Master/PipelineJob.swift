import ChimeraML
import ChimeraWire
import SwiftProtobuf

/// The stages of a pipeline job: which worker runs which layers of which replica, and what each
/// stage reported. The master stays the parameter server of the whole vector: each stage pulls and
/// pushes only its slice, and the replicas' slices are averaged as a BSP round (hybrid parallelism).
struct PipelineJob {
    let plan: PipelinePlan
    let replicas: Int
    /// By worker id.
    let assignments: [UInt32: Chimera_V1_StageAssignment]
    let secret: UInt64
    var totals: [UInt32: Chimera_V1_StageStats] = [:]
    /// The stages keep and step their slices; the master only counts the rounds (see `ownsWeights`).
    var stageOwned = false
    /// The iteration the job started at: only that pull is answered with weights when stages own them.
    var firstClock = 0

    var stageCount: Int { plan.stages.count }

    var wire: Chimera_V1_Pipeline {
        Chimera_V1_Pipeline.with {
            $0.stages = assignments.values.sorted { ($0.replica, $0.stage) < ($1.replica, $1.stage) }
            $0.secret = secret
            $0.stageOwned = stageOwned
        }
    }

    /// Whether the stages can keep their slices between iterations: one replica (nothing to average),
    /// ssgd (an element-wise step on each slice equals the master's on the whole vector), a divergence
    /// that fails the fit (a backoff needs the master to hold the best weights) and no early stop on
    /// tolerance (the stages send their slices on the last iteration they know of).
    static func ownsWeights(_ configuration: TrainingConfiguration) -> Bool {
        configuration.replicas == 1 && configuration.algorithm == .ssgd && configuration.onDivergence == .fail
            && configuration.tolerance == 0
    }

    /// A ready worker as a pipeline sees it.
    struct Candidate {
        let id: UInt32
        let name: String
        let rows: Int
        let digest: UInt64
        let endpoint: String
        var publicKey = ""
    }

    /// Assigns stages to `workers` (in id order): each replica's stages hold the same data (digest).
    /// The error says what is missing.
    static func assign(network: MLP, configuration: TrainingConfiguration, workers: [Candidate]) -> Result<
        PipelineJob, FitRefusal
    > {
        let replicas = configuration.replicas
        let able = workers.filter { !$0.endpoint.isEmpty }
        let unable = workers.filter { $0.endpoint.isEmpty }.map(\.name)
        let stages =
            !configuration.stageLayers.isEmpty
            ? configuration.stageLayers.count
            : configuration.stages > 0 ? configuration.stages : min(network.layers, able.count / replicas)
        let needed = max(stages, 1) * replicas
        guard stages >= 1, able.count >= needed else {
            var text =
                "the pipeline needs \(max(stages, 1)) stages × \(replicas) replica\(replicas == 1 ? "" : "s") = \(needed) workers; \(able.count) ready worker\(able.count == 1 ? " can" : "s can") run a stage"
            if !unable.isEmpty { text += " (\(unable.joined(separator: ", ")) announced no stage endpoint)" }
            return .failure(FitRefusal(text, code: .noWorkers))
        }
        let plan: PipelinePlan
        do {
            plan = try PipelinePlan(network: network, stages: stages, layersPerStage: configuration.stageLayers)
        } catch {
            return .failure(FitRefusal(error.description))
        }
        // Replicas from workers holding the same data, in id order.
        var groups: [(digest: UInt64, members: [Candidate])] = []
        for worker in able {
            if let index = groups.firstIndex(where: { $0.digest == worker.digest && $0.members[0].rows == worker.rows })
            {
                groups[index].members.append(worker)
            } else {
                groups.append((worker.digest, [worker]))
            }
        }
        var chosen: [[Candidate]] = []
        for group in groups {
            var members = group.members[...]
            while members.count >= stages && chosen.count < replicas {
                chosen.append(Array(members.prefix(stages)))
                members = members.dropFirst(stages)
            }
        }
        guard chosen.count == replicas else {
            let described = groups.map { group in
                "\(group.members.map(\.name).joined(separator: ", ")): \(group.members[0].rows) rows (data \(String(group.digest, radix: 16).prefix(8)))"
            }
            return .failure(
                FitRefusal(
                    "each replica's \(stages) stages must hold the same data (stage 0 reads its features, the last its labels, row for row): the ready workers hold \(groups.count) different data sets — \(described.joined(separator: "; ")); start \(stages) workers on the same data folder per replica"
                ))
        }
        var assignments: [UInt32: Chimera_V1_StageAssignment] = [:]
        for (replica, members) in chosen.enumerated() {
            for (stage, worker) in members.enumerated() {
                let layers = plan.stages[stage]
                let parameters = network.parameterRange(layers: layers)
                assignments[worker.id] = Chimera_V1_StageAssignment.with {
                    $0.workerID = worker.id
                    $0.replica = UInt32(replica)
                    $0.stage = UInt32(stage)
                    $0.firstLayer = UInt32(layers.lowerBound)
                    $0.endLayer = UInt32(layers.upperBound)
                    $0.endpoint = worker.endpoint
                    $0.publicKey = worker.publicKey
                    $0.parameterOffset = UInt64(parameters.lowerBound)
                    $0.parameterCount = UInt64(parameters.count)
                }
            }
        }
        var job = PipelineJob(
            plan: plan, replicas: replicas, assignments: assignments, secret: UInt64.random(in: 1...UInt64.max))
        job.stageOwned = ownsWeights(configuration)
        return .success(job)
    }

    /// A stage's slice of the flat vector.
    func slice(of worker: UInt32) -> Range<Int>? {
        guard let stage = assignments[worker] else { return nil }
        return Int(stage.parameterOffset)..<Int(stage.parameterOffset + stage.parameterCount)
    }

    mutating func record(_ worker: UInt32, _ stats: Chimera_V1_StageStats) {
        var total = totals[worker] ?? Chimera_V1_StageStats()
        total.computeSeconds += stats.computeSeconds
        total.idleSeconds += stats.idleSeconds
        total.bytesSent += stats.bytesSent
        total.peakMicroBatches = max(total.peakMicroBatches, stats.peakMicroBatches)
        total.peakActivationBytes = max(total.peakActivationBytes, stats.peakActivationBytes)
        totals[worker] = total
    }

    /// The report's per-stage lines, replica by replica.
    func report(names: (UInt32) -> String) -> [Chimera_V1_StageReport] {
        assignments.values.sorted { ($0.replica, $0.stage) < ($1.replica, $1.stage) }.map { stage in
            let total = totals[stage.workerID] ?? Chimera_V1_StageStats()
            let busy = total.computeSeconds + total.idleSeconds
            return Chimera_V1_StageReport.with {
                $0.worker = names(stage.workerID)
                $0.replica = stage.replica
                $0.stage = stage.stage
                $0.layers =
                    stage.endLayer - stage.firstLayer == 1
                    ? "\(stage.firstLayer)" : "\(stage.firstLayer)-\(stage.endLayer - 1)"
                $0.parameters = stage.parameterCount
                $0.computeSeconds = total.computeSeconds
                $0.idleSeconds = total.idleSeconds
                $0.idleFraction = busy > 0 ? total.idleSeconds / busy : 0
                $0.bytesSent = total.bytesSent
                $0.peakMicroBatches = total.peakMicroBatches
                $0.peakActivationBytes = total.peakActivationBytes
            }
        }
    }
}
