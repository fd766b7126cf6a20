import ChimeraML
import ChimeraWire
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// Parameter-server jobs: starting one for a client (or a checkpoint), following its progress,
/// checkpoints, and ending it with a report and a saved model.
extension ChimeraMaster {
    func refuseFit(_ peer: Frame, _ requestID: UInt64, _ code: Chimera_V1_ErrorCode, _ text: String) throws {
        try reply(to: peer, .error(code, text, requestID: requestID))
    }

    /// Starts a job for a client's request, or (`resume`, no client) the interrupted job of a checkpoint.
    func startJob(_ peer: Frame?, _ request: Chimera_V1_FitRequest, _ requestID: UInt64, resume: FittedModel? = nil)
        throws
    {
        func refuse(_ code: Chimera_V1_ErrorCode, _ text: String) throws {
            if let peer { return try refuseFit(peer, requestID, code, text) }
            logger.info("cannot resume job \(resume?.jobID ?? 0): \(text)")
        }
        var configuration: TrainingConfiguration
        if let resume {
            configuration = resume.configuration
        } else {
            do {
                configuration = try TrainingConfiguration(wire: request.config)
            } catch {
                return try refuse(.badRequest, error.description)
            }
        }
        let (ready, labels): ([WorkerRecord], JobLabels)
        switch jobParticipants() {
        case .success(let found): (ready, labels) = found
        case .failure(let refusal): return try refuse(refusal.code, refusal.text)
        }
        let first = ready[0]
        if resume == nil && request.config.model == .unspecified {
            configuration.model = labels.kind.linearModel
            logger.info("the fit names no model; the labels are \(labels.kind), so \(configuration.model.rawValue)")
        }
        // An MLP classifies unless the labels are continuous; a linear model is one or the other.
        let classify =
            configuration.model == .mlp ? labels.kind != .continuous : configuration.model.isClassifier
        if !labels.classNames.isEmpty && !classify {
            return try refuse(
                .badRequest,
                "the labels are class names (\(labels.classNames.prefix(5).joined(separator: ", "))); \(configuration.model.rawValue) regression needs numbers"
            )
        }
        var features = first.featureNames
        if configuration.parallelism != .features,
            let other = ready.first(where: { $0.featureNames != first.featureNames })
        {
            return try refuse(
                .badRequest,
                "the ready workers hold different columns (\(first.name): \(first.featureNames.prefix(4).joined(separator: ", "))…, \(other.name): \(other.featureNames.prefix(4).joined(separator: ", "))…): this fit needs the same columns on every worker; blocks of columns train with parallelism features"
            )
        }
        // Feature blocks: every ready worker holds some of the columns; the job's are all of them.
        var featureJob: FeatureJob?
        if configuration.parallelism == .features {
            let candidates = ready.map {
                FeatureJob.Candidate(
                    id: $0.id, name: $0.name, rows: $0.rows, featureNames: $0.featureNames, labelDigest: $0.labelDigest)
            }
            switch FeatureJob.assign(candidates) {
            case .success(let assigned):
                features = assigned.features
                let outputs = configuration.model.outputs(classes: classify ? labels.values.count : 0)
                featureJob = FeatureJob(blocks: assigned.blocks, rows: first.rows, outputs: outputs)
            case .failure(let refusal): return try refuse(refusal.code, refusal.text)
            }
        }
        var classes: [Float] = []
        if classify {
            classes = labels.values
            let several = configuration.model == .softmax || configuration.model == .mlp
            guard several ? classes.count >= 2 : classes.count == 2 else {
                return try refuse(
                    .badRequest,
                    "\(configuration.model.rawValue) needs \(several ? "at least 2" : "exactly 2") classes; the workers' labels have \(classes.count)"
                )
            }
        }
        let classNames = classify ? labels.classNames : []
        var standardizer: Standardizer?
        if configuration.standardize {
            let moments = ready.compactMap(\.moments)
            guard moments.count == ready.count else {
                return try refuse(.badRequest, "standardisation needs column sums from every worker; set raw_features")
            }
            if let featureJob {
                // Each block holds every row of its columns: its moments are those columns' own,
                // joined in the job's column order.
                var joined = ColumnMoments(columns: 0)
                joined.count = moments[0].count
                for (worker, _) in featureJob.blocks.sorted(by: { $0.value.lowerBound < $1.value.lowerBound }) {
                    guard let block = membership[worker]?.moments else { continue }
                    joined.sum += block.sum
                    joined.sumOfSquares += block.sumOfSquares
                }
                standardizer = joined.standardizer
            } else {
                standardizer = moments.reduce(ColumnMoments(columns: features.count), +).standardizer
            }
        }
        let objective: Objective
        do {
            objective = try Objective(configuration: configuration, features: features.count, classes: classes)
        } catch {
            return try refuse(.badRequest, error.description)
        }
        // Every round carries the whole weight vector in one frame.
        let weightBytes = objective.weightCount * MemoryLayout<Float>.size
        guard weightBytes <= options.maxFrameBytes else {
            return try refuse(
                .badRequest,
                "the model has \(objective.weightCount) parameters (\(weightBytes >> 20) MiB as float32), more than the master's frame limit (\(options.maxFrameBytes >> 20) MiB, chimera master --max-frame-mib): use smaller hidden layers"
            )
        }
        // Sharded jobs: which parameter servers hold which range of the weights.
        // Unset: every registered server, for the fits servers can hold (data-parallel, float32
        // updates, weights not recorded every iteration); the master holds the others.
        let serversCanHold =
            configuration.parallelism == .data && configuration.wireDType == .float32 && !request.config.recordWeights
        let wantedServers = configuration.servers ?? (serversCanHold ? servers.servers.count : 0)
        var shardPlan: [ShardedJob.Shard] = []
        if wantedServers > 0 {
            guard !request.config.recordWeights else {
                return try refuse(
                    .badRequest,
                    "record_weights records the weights every iteration, which parameter servers keep to themselves: leave servers unset or 0"
                )
            }
            guard configuration.parallelism == .data else {
                return try refuse(
                    .badRequest,
                    "servers \(wantedServers): parameter servers hold data-parallel fits' weights; parallelism \(configuration.parallelism.rawValue) keeps them on the master and the workers (leave servers unset or 0)"
                )
            }
            guard configuration.wireDType == .float32 else {
                return try refuse(
                    .badRequest,
                    "servers \(wantedServers): updates to parameter servers travel as float32; use wire_dtype float32, or servers 0"
                )
            }
            let live = servers.byName
            guard live.count >= wantedServers else {
                return try refuse(
                    .noWorkers,
                    "the fit asks for \(wantedServers) parameter servers; \(live.count) \(live.count == 1 ? "is" : "are") registered (start them with chimera server --master …, or chimera master --servers \(wantedServers))"
                )
            }
            guard objective.weightCount >= wantedServers else {
                return try refuse(
                    .badRequest,
                    "the model's \(objective.weightCount) parameters cannot be split over \(wantedServers) servers")
            }
            let ranges = ServerRegistry.ranges(count: objective.weightCount, shards: wantedServers)
            shardPlan = zip(live.prefix(wantedServers), ranges).map { server, range in
                ShardedJob.Shard(
                    server: server.id, name: server.name, endpoint: server.endpoint, publicKey: server.publicKey,
                    range: range)
            }
        }
        var initial: [Float]?
        if let resume {
            guard resume.featureNames == features, resume.classes == classes, resume.classNames ?? [] == classNames
            else {
                return try refuse(.badRequest, "the workers' columns or classes are not the checkpoint's")
            }
            guard resume.weights.count == objective.weightCount else {
                return try refuse(
                    .badRequest,
                    "the checkpoint holds \(resume.weights.count) weights, its model (\(objective.shapeSummary)) has \(objective.weightCount)"
                )
            }
            // The weights were learnt in the checkpoint's standardisation: keep it.
            standardizer = resume.standardizer
            initial = resume.weights
        } else if options.resume, let previous = model, previous.featureNames == features, previous.classes == classes,
            previous.classNames ?? [] == classNames, previous.model == configuration.model,
            previous.weights.count == objective.weightCount
        {
            initial = previous.weights
        }
        var pipeline: PipelineJob?
        var participants = ready
        if configuration.parallelism == .pipeline, let network = objective.network {
            let candidates = ready.map {
                PipelineJob.Candidate(
                    id: $0.id, name: $0.name, rows: $0.rows, digest: $0.dataDigest, endpoint: $0.stageEndpoint,
                    publicKey: $0.stageKey)
            }
            switch PipelineJob.assign(network: network, configuration: configuration, workers: candidates) {
            case .success(let assigned): pipeline = assigned
            case .failure(let refusal): return try refuse(refusal.code, refusal.text)
            }
            participants = ready.filter { pipeline?.assignments[$0.id] != nil }
        }
        var state = ParameterServerState(
            configuration: configuration, objective: objective, initialWeights: initial,
            startIteration: resume?.iterations ?? 0, optimizerState: resume?.optimizerState)
        if pipeline?.stageOwned == true { state.keepWeightsOnWorkers() }
        // The joins below are the servers' first events.
        if !shardPlan.isEmpty { state.coordinateReplicas() }
        pipeline?.firstClock = state.completedIterations
        for record in participants {
            _ = state.join(record.id, rows: record.rows)
            membership[record.id]?.barrierWaitSeconds = 0
            membership[record.id]?.lastClock = 0
        }
        let id = jobs.begin(.parameterServer, resumed: resume?.jobID)
        var current = Job(
            id: id, state: state, featureNames: features, classes: classes, classNames: classNames,
            standardizer: standardizer,
            startedAt: monotonicSeconds(), bytesAtStart: (counters.bytesSent, counters.bytesReceived))
        current.lastCheckpoint = state.completedIterations
        current.pipeline = pipeline
        current.features = featureJob
        if !shardPlan.isEmpty {
            current.shards = ShardedJob(
                shards: shardPlan, initial: state.weights, initialOptimizer: resume?.optimizerState,
                startIteration: state.completedIterations)
        }
        current.recordTimeline = request.config.recordTimeline
        current.recordWeights = request.config.recordWeights
        if current.recordTimeline { current.timeline.append(iterationRecord(current)) }
        if let peer, !request.asynchronous { current.client = (try copy(peer), requestID) }
        if resume != nil, let waiting = resumingClient {
            current.client = waiting
            resumingClient = nil
        }
        job = current
        logger.info(
            "job \(current.id) \(resume == nil ? "started" : "resumed at iteration \(state.completedIterations)"): \(objective.shapeSummary), \(participants.count) workers (\(participants.map(\.name).joined(separator: ", ")))\(pipeline.map { ", pipeline of \($0.stageCount) stages (layers \($0.plan.layerCounts)) × \($0.replicas) replica(s), \(configuration.microBatches) micro-batches, \(configuration.pipelineSchedule.rawValue)" } ?? ""), \(shardPlan.isEmpty ? "" : "weights on \(shardPlan.count) parameter servers (\(shardPlan.map(\.name).joined(separator: ", "))), ")\(configuration.maxIterations) iterations, staleness \(configuration.staleness.map(String.init) ?? "unbounded")"
        )
        try publish(
            WireMessage(
                .jobStart(current.start(startClock: state.completedIterations)), tensors: current.standardizerTensors))
        if let peer, request.asynchronous {
            try reply(
                to: peer,
                WireMessage(
                    .fitReply(
                        Chimera_V1_FitReply.with {
                            $0.jobID = current.id; $0.state = .running; $0.jobToken = jobToken(current.id)
                        }), requestID: requestID))
        }
    }

    func copy(_ frame: Frame) throws -> Frame {
        try frame.withUnsafeBytes { (raw) throws(ZMQError) in try Frame(copying: raw) }
    }

    /// After every event: the job may be done, out of workers, or due for a checkpoint.
    func checkJobProgress() throws {
        guard let recording = job?.recordTimeline else { return }
        let due = { (job: Job) in job.state.completedIterations > Int(job.timeline.last?.iteration ?? 0) }
        if recording, let record = job.flatMap({ due($0) ? iterationRecord($0) : nil }) {
            // In place, with no other copy alive: appending to a shared array would copy the whole timeline.
            job!.timeline.append(record)
        }
        // Read in place (no copy of the job: this runs after every message of a round).
        guard job != nil else { return }
        let losses = job!.state.lossHistory.count
        if losses != job!.lossSeconds.count {
            let now = monotonicSeconds() - job!.startedAt
            if losses < job!.lossSeconds.count { job!.lossSeconds.removeAll() }
            while job!.lossSeconds.count < losses { job!.lossSeconds.append(now) }
        }
        if job!.state.backoffs.count > job!.backoffsLogged {
            job!.backoffsLogged = job!.state.backoffs.count
            logger.info(
                "job \(job!.id) backed off (\(job!.backoffsLogged) of \(job!.state.configuration.maxBackoffs)): \(job!.state.backoffs.last!)"
            )
        }
        switch JobProgress.of(job!.state, lastCheckpoint: job!.lastCheckpoint, failedWorkers: job!.failedWorkers) {
        case .running:
            break
        case .checkpointDue:
            job!.lastCheckpoint = job!.state.completedIterations
            if job!.shards != nil { return try requestShardCheckpoint() }
            saveModel(fittedModel(job!, finished: false), file: "checkpoint.json")
        case .finished(let state, let error, let code):
            try finishJob(state: state, error: error, code: code)
        }
    }

    func finishJob(state: Chimera_V1_JobState, error: String, code: Chimera_V1_ErrorCode = .noWorkers) throws {
        // A sharded job's weights are on its servers: it reports once they sent them (a failed job
        // saves no model and does not wait).
        if state != .failed, try collectFinalRanges(state: state, error: error, code: code) { return }
        guard var current = job else { return }
        try deliver(current.state.finish())
        try releaseMargins()
        job = current
        let report = fitReport(current)
        current = job!
        job = nil
        jobs.end()
        lastJob = JobSummary(
            id: current.id, state: state, report: report, error: error, lossHistory: current.state.lossHistory,
            lossSeconds: current.lossSeconds, config: current.state.configuration.wire)
        counters.finished(
            jobStateName(state), iterations: current.state.completedIterations,
            staleness: current.state.stalenessHistogram,
            barrierWait: report.barrierWaitSeconds)
        // Stages that own their weights send them only at checkpoints and at the end: a cancelled
        // job's weights since the last checkpoint stayed with them.
        let stale = current.pipeline?.stageOwned ?? false
        if state == .succeeded || (state == .cancelled && current.state.completedIterations > 0 && !stale) {
            let fitted = fittedModel(current, finished: true)
            model = fitted
            saveModel(fitted, file: "model.json")
            saveModel(fitted, file: "checkpoint.json")
        } else if let directory = options.modelDirectory,
            let saved = try? FittedModel.load(from: directory.appendingPathComponent("checkpoint.json")),
            saved.jobID == current.id
        {
            // A failed job's checkpoint is not to be resumed; the last finished model stays served.
            var ended = saved
            ended.finished = true
            saveModel(ended, file: "checkpoint.json")
        }
        try publish(
            WireMessage(
                .jobStop(
                    Chimera_V1_JobStop.with {
                        $0.jobID = current.id; $0.reason = error.isEmpty ? "done" : error; $0.failed = state == .failed
                    })))
        logger.log(
            level: state == .failed ? .warning : .info,
            "\(String(format: "job %llu %@ after %d iterations, loss %.6g, %.2f s", current.id, state == .succeeded ? "finished" : (state == .cancelled ? "was cancelled" : "failed: \(error)"), current.state.completedIterations, current.state.currentLoss ?? .nan, report.wallSeconds))",
            metadata: ["job": "\(current.id)", "iteration": "\(current.state.completedIterations)"])
        if let client = current.client {
            if state == .failed {
                try reply(to: client.peer, .error(code, error, requestID: client.requestID))
            } else {
                let reply = Chimera_V1_FitReply.with {
                    $0.jobToken = jobToken(current.id)
                    $0.jobID = current.id
                    $0.state = state
                    $0.report = report
                }
                try self.reply(to: client.peer, WireMessage(.fitReply(reply), requestID: client.requestID))
            }
        }
    }

    func fittedModel(_ current: Job, finished: Bool) -> FittedModel {
        var clocks: [String: Int] = [:]
        for (id, clock) in current.state.barrier.clocks { clocks[membership[id]?.name ?? "\(id)"] = clock }
        return FittedModel(
            model: current.state.configuration.model, weights: current.state.weights,
            featureNames: current.featureNames,
            classes: current.classes, standardizer: current.standardizer, configuration: current.state.configuration,
            iterations: current.state.completedIterations, finalLoss: current.state.currentLoss, clocks: clocks,
            classNames: current.classNames.isEmpty ? nil : current.classNames, jobID: current.id, finished: finished,
            optimizerState: current.shards.map { $0.optimizer ?? current.state.optimizerState }
                ?? current.state.optimizerState)
    }

    func saveModel(_ fitted: FittedModel, file: String) {
        guard let directory = options.modelDirectory else { return }
        do {
            try fitted.save(to: directory.appendingPathComponent(file), permissions: options.modelFileMode)
        } catch {
            logger.info("could not save \(file): \(error)")
        }
    }

    func iterationRecord(_ current: Job) -> Chimera_V1_IterationRecord {
        Chimera_V1_IterationRecord.with {
            $0.iteration = UInt64(current.state.completedIterations)
            $0.seconds = monotonicSeconds() - current.startedAt
            $0.trainLoss = current.state.currentLoss ?? 0
            let clocks = current.state.barrier.clocks.sorted { $0.key < $1.key }
            $0.workerIds = clocks.map(\.key)
            $0.clocks = clocks.map { UInt64($0.value) }
            $0.barrierWaitSeconds = membership.barrierWaitSeconds
            if current.recordWeights { $0.weights = current.state.weights }
        }
    }

    func fitReport(_ current: Job) -> Chimera_V1_FitReport {
        let wall = monotonicSeconds() - current.startedAt
        let iterations = current.state.completedIterations
        return Chimera_V1_FitReport.with {
            $0.iterations = UInt64(iterations)
            $0.finalLoss = current.state.currentLoss ?? 0
            $0.wallSeconds = wall
            $0.secondsPerIteration = iterations > 0 ? wall / Double(iterations) : 0
            $0.clocks = workerClocks(current)
            $0.barrierWaitSeconds = membership.barrierWaitSeconds
            $0.stalenessHistogram = current.state.stalenessHistogram.map(UInt64.init)
            $0.bytesSent = UInt64(counters.bytesSent - current.bytesAtStart.sent)
            $0.bytesReceived = UInt64(counters.bytesReceived - current.bytesAtStart.received)
            $0.failedWorkers = current.failedWorkers.sorted()
            $0.backoffs = current.state.backoffs.map(\.description)
            $0.divergence = current.state.divergence?.description ?? ""
            $0.timeline = current.timeline
            if let pipeline = current.pipeline {
                $0.stages = pipeline.report { self.membership[$0]?.name ?? "worker \($0)" }
            }
        }
    }
}
