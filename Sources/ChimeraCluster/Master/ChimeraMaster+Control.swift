import ChimeraML
import ChimeraWire
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// Client requests (gateway, `chimera fit` / `predict`, on the control endpoint), and the job lifecycle.
extension ChimeraMaster {
    func handleControlMessage(_ peer: Frame, _ message: WireMessage) throws {
        let requestID = message.control.requestID
        // Under CURVE a worker's key may read status, not command the cluster.
        switch message.body {
        case .statusRequest, .jobStatusRequest: break
        default:
            guard peerRole.mayCommand else {
                counters.reject("forbidden_role")
                logRejection("forbidden_role", "refused a \(message.body?.kindName ?? "?") from a worker's CURVE key")
                return try reply(
                    to: peer, .error(.forbidden, "this CURVE key is a worker's: it may not send client requests", requestID: requestID))
            }
        }
        switch message.body {
        case .fitRequest(let request):
            if let refusal = modeMismatch(request.kind) {
                return try reply(to: peer, .error(.wrongMode, refusal, requestID: requestID))
            }
            if isBusy {
                let id = job?.id ?? aggregation?.id ?? 0
                return try reply(to: peer, .error(.busy, "job \(id) is running", requestID: requestID))
            }
            if let waiting = resumeWaitText() ?? expectedWorkersWaitText() {
                return try reply(to: peer, .error(.busy, waiting, requestID: requestID))
            }
            if let plan = interrupted {
                logger.info("the interrupted job \(plan.jobID ?? 0) is abandoned: a new fit was asked for")
                interrupted = nil
            }
            if options.mode == .aggregation {
                try startAggregation(peer, request, requestID)
            } else {
                try startJob(peer, request, requestID)
            }
        case .predictRequest(let request):
            try predict(peer, request, message)
        case .statusRequest:
            try reply(to: peer, WireMessage(.clusterStatus(clusterStatus()), requestID: requestID))
        case .jobStatusRequest(let request):
            try reply(to: peer, jobStatus(request.jobID, requestID: requestID))
        case .cancelJob(let request):
            // Only the client that started a job holds its token; an authenticated CURVE client
            // (a key with the client role) may cancel any job.
            guard request.jobToken == jobToken(request.jobID) || (options.curve != nil && peerRole.mayCommand) else {
                counters.reject("forbidden_cancel")
                logRejection("forbidden_cancel", "refused to cancel job \(request.jobID): no job token")
                return try reply(
                    to: peer,
                    .error(
                        .forbidden, "cancelling job \(request.jobID) needs its job_token (FitReply.job_token, given to the client that started it)",
                        requestID: requestID))
            }
            if let current = aggregation, current.id == request.jobID {
                try finishAggregation(state: .cancelled, error: "cancelled")
                return try reply(to: peer, WireMessage(.ack(Chimera_V1_Ack.with { $0.jobID = current.id }), requestID: requestID))
            }
            guard let current = job, current.id == request.jobID else {
                try reply(to: peer, .error(.unknownJob, "job \(request.jobID) is not running", requestID: requestID))
                return
            }
            try finishJob(state: .cancelled, error: "cancelled")
            try reply(to: peer, WireMessage(.ack(Chimera_V1_Ack.with { $0.jobID = current.id }), requestID: requestID))
        default:
            counters.reject("unexpected_body")
            try reply(
                to: peer,
                .error(.badRequest, "\(message.body?.kindName ?? "?") is not a control request", requestID: requestID))
        }
    }

    // MARK: Jobs


    func refuseFit(_ peer: Frame, _ requestID: UInt64, _ code: Chimera_V1_ErrorCode, _ text: String) throws {
        try reply(to: peer, .error(code, text, requestID: requestID))
    }

    /// Starts a job for a client's request, or (`resume`, no client) the interrupted job of a checkpoint.
    func startJob(_ peer: Frame?, _ request: Chimera_V1_FitRequest, _ requestID: UInt64, resume: FittedModel? = nil) throws {
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
        let ready = membership.ready
        guard let first = ready.first else { return try refuse(.noWorkers, "no worker is connected") }
        let labels: JobLabels
        switch jobLabels(ready) {
        case .success(let found): labels = found
        case .failure(let refusal): return try refuse(.badRequest, refusal.text)
        }
        if resume == nil && request.config.model == .unspecified {
            configuration.model = labels.kind.linearModel
            logger.info("the fit names no model; the labels are \(labels.kind), so \(configuration.model.rawValue)")
        }
        if !labels.classNames.isEmpty && !configuration.model.isClassifier {
            return try refuse(
                .badRequest, "the labels are class names (\(labels.classNames.prefix(5).joined(separator: ", "))); \(configuration.model.rawValue) regression needs numbers")
        }
        let features = first.featureNames
        var classes: [Float] = []
        if configuration.model.isClassifier {
            classes = labels.values
            let enough = configuration.model == .softmax ? classes.count >= 2 : classes.count == 2
            guard enough else {
                return try refuse(
                    .badRequest,
                    "\(configuration.model.rawValue) needs \(configuration.model == .softmax ? "at least 2" : "exactly 2") classes; the workers' labels have \(classes.count)"
                )
            }
        }
        let classNames = configuration.model.isClassifier ? labels.classNames : []
        var standardizer: Standardizer?
        if configuration.standardize {
            let moments = ready.compactMap(\.moments)
            guard moments.count == ready.count else {
                return try refuse(.badRequest, "standardisation needs column sums from every worker; set raw_features")
            }
            standardizer = moments.reduce(ColumnMoments(columns: features.count), +).standardizer
        }
        let objective = Objective(kind: configuration.model, features: features.count, classes: classes)
        var initial: [Float]?
        if let resume {
            guard resume.featureNames == features, resume.classes == classes, resume.classNames ?? [] == classNames else {
                return try refuse(.badRequest, "the workers' columns or classes are not the checkpoint's")
            }
            // The weights were learnt in the checkpoint's standardisation: keep it.
            standardizer = resume.standardizer
            initial = resume.weights
        } else if options.resume, let previous = model, previous.featureNames == features, previous.classes == classes,
            previous.classNames ?? [] == classNames, previous.model == configuration.model
        {
            initial = previous.weights
        }
        var state = ParameterServerState(
            configuration: configuration, objective: objective, initialWeights: initial, startIteration: resume?.iterations ?? 0)
        for record in ready {
            _ = state.join(record.id, rows: record.rows)
            membership[record.id]?.barrierWaitSeconds = 0
            membership[record.id]?.lastClock = 0
        }
        let id = resume?.jobID ?? nextJobID
        var current = Job(
            id: id, state: state, featureNames: features, classes: classes, classNames: classNames,
            standardizer: standardizer,
            startedAt: monotonicSeconds(), bytesAtStart: (counters.bytesSent, counters.bytesReceived))
        nextJobID = max(nextJobID, id + 1)
        current.lastCheckpoint = state.completedIterations
        current.recordTimeline = request.config.recordTimeline
        current.recordWeights = request.config.recordWeights
        if current.recordTimeline { current.timeline.append(iterationRecord(current)) }
        if let peer, !request.asynchronous { current.client = (try copy(peer), requestID) }
        job = current
        logger.info(
            "job \(current.id) \(resume == nil ? "started" : "resumed at iteration \(state.completedIterations)"): \(configuration.model.rawValue), \(ready.count) workers (\(ready.map(\.name).joined(separator: ", "))), \(configuration.maxIterations) iterations, staleness \(configuration.staleness.map(String.init) ?? "unbounded")"
        )
        try publish(
            WireMessage(.jobStart(current.start(startClock: state.completedIterations)), tensors: current.standardizerTensors))
        if let peer, request.asynchronous {
            try reply(
                to: peer,
                WireMessage(.fitReply(Chimera_V1_FitReply.with { $0.jobID = current.id; $0.state = .running; $0.jobToken = jobToken(current.id) }), requestID: requestID))
        }
    }

    /// Why a request of `kind` does not fit this master's mode (nil: it does; unspecified always does).
    func modeMismatch(_ kind: Chimera_V1_JobKind) -> String? {
        switch (kind, options.mode) {
        case (.aggregation, .parameterServer):
            "this master runs in parameter-server mode; start one with --mode aggregation for bagging"
        case (.parameterServer, .aggregation):
            "this master runs in aggregation mode; start one with --mode parameter-server for SGD models"
        default: nil
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
        if job!.state.backoffs.count > job!.backoffsLogged {
            job!.backoffsLogged = job!.state.backoffs.count
            logger.info("job \(job!.id) backed off (\(job!.backoffsLogged) of \(job!.state.configuration.maxBackoffs)): \(job!.state.backoffs.last!)")
        }
        if let divergence = job!.state.divergence {
            try finishJob(state: .failed, error: divergence.description, code: .diverged)
        } else if job!.state.isDone {
            try finishJob(state: .succeeded, error: "")
        } else if job!.state.barrier.clocks.isEmpty {
            try finishJob(state: .failed, error: "every worker failed (\(job!.failedWorkers.sorted().joined(separator: ", ")))")
        } else if job!.state.configuration.checkpointEvery > 0,
            job!.state.completedIterations - job!.lastCheckpoint >= job!.state.configuration.checkpointEvery
        {
            job!.lastCheckpoint = job!.state.completedIterations
            saveModel(fittedModel(job!, finished: false), file: "checkpoint.json")
        }
    }

    func finishJob(state: Chimera_V1_JobState, error: String, code: Chimera_V1_ErrorCode = .noWorkers) throws {
        guard var current = job else { return }
        try deliver(current.state.finish())
        job = current
        let report = fitReport(current)
        current = job!
        job = nil
        lastJob = JobSummary(id: current.id, state: state, report: report, error: error, lossHistory: current.state.lossHistory)
        counters.finished(
            jobStateName(state), iterations: current.state.completedIterations, staleness: current.state.stalenessHistogram,
            barrierWait: report.barrierWaitSeconds)
        if state == .succeeded || (state == .cancelled && current.state.completedIterations > 0) {
            let fitted = fittedModel(current, finished: true)
            model = fitted
            saveModel(fitted, file: "model.json")
            saveModel(fitted, file: "checkpoint.json")
        } else if let directory = options.modelDirectory,
            let saved = try? FittedModel.load(from: directory.appendingPathComponent("checkpoint.json")), saved.jobID == current.id
        {
            // A failed job's checkpoint is not to be resumed; the last finished model stays served.
            var ended = saved
            ended.finished = true
            saveModel(ended, file: "checkpoint.json")
        }
        try publish(
            WireMessage(
                .jobStop(Chimera_V1_JobStop.with { $0.jobID = current.id; $0.reason = error.isEmpty ? "done" : error; $0.failed = state == .failed })))
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

    private func fittedModel(_ current: Job, finished: Bool) -> FittedModel {
        var clocks: [String: Int] = [:]
        for (id, clock) in current.state.barrier.clocks { clocks[membership[id]?.name ?? "\(id)"] = clock }
        return FittedModel(
            model: current.state.configuration.model, weights: current.state.weights, featureNames: current.featureNames,
            classes: current.classes, standardizer: current.standardizer, configuration: current.state.configuration,
            iterations: current.state.completedIterations, finalLoss: current.state.currentLoss, clocks: clocks,
            classNames: current.classNames.isEmpty ? nil : current.classNames, jobID: current.id, finished: finished)
    }

    private func saveModel(_ fitted: FittedModel, file: String) {
        guard let directory = options.modelDirectory else { return }
        do {
            try fitted.save(to: directory.appendingPathComponent(file), permissions: options.modelFileMode)
        } catch {
            logger.info("could not save \(file): \(error)")
        }
    }

    /// Every live worker and the 256 most recently seen dead ones (a status answer stays small).
    func workerClocks(_ current: Job?) -> [Chimera_V1_WorkerClock] {
        membership.listing(deadLimit: 256).map { record in
            Chimera_V1_WorkerClock.with {
                $0.workerID = record.id
                $0.name = record.name
                $0.clock = UInt64(current?.state.clock(of: record.id) ?? (current == nil ? 0 : record.lastClock))
                $0.alive = record.alive
                $0.ready = record.alive && record.subscribed
                $0.barrierWaitSeconds = record.barrierWaitSeconds
                $0.pid = record.pid
                $0.host = record.host
            }
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
        }
    }

    // MARK: Status and prediction

    func clusterStatus() -> Chimera_V1_ClusterStatus {
        Chimera_V1_ClusterStatus.with {
            $0.mode = options.mode == .aggregation ? .aggregation : .parameterServer
            $0.workers = workerClocks(job)
            // Idle: the last job, whatever its kind (0 and unspecified before the first).
            $0.currentJobID = job?.id ?? aggregation?.id ?? lastJob?.id ?? 0
            $0.currentJobState = isBusy ? .running : lastJob?.state ?? .unspecified
            $0.iteration = UInt64(job?.state.completedIterations ?? (isBusy ? 0 : Int(lastJob?.report.iterations ?? 0)))
            $0.loss = job?.state.currentLoss ?? (isBusy ? 0 : lastJob?.report.finalLoss ?? 0)
            $0.rejectedMessages = UInt64(counters.rejectedTotal)
            $0.rejectedByKind = counters.rejected.mapValues(UInt64.init)
            $0.bytesSent = UInt64(counters.bytesSent)
            $0.bytesReceived = UInt64(counters.bytesReceived)
            $0.iterationsTotal = UInt64(counters.iterations + (job?.state.completedIterations ?? 0))
            if let current = job {
                let elapsed = monotonicSeconds() - current.startedAt
                $0.iterationsPerSecond = elapsed > 0 ? Double(current.state.completedIterations) / elapsed : 0
            }
            $0.stalenessHistogram = MasterCounters.sum(counters.staleness, job?.state.stalenessHistogram ?? []).map(UInt64.init)
            $0.barrierWaitSeconds = counters.barrierWaitSeconds + (job == nil ? 0 : membership.barrierWaitSeconds)
            $0.jobsByState = counters.jobsByState.mapValues(UInt64.init)
        }
    }

    func jobStateName(_ state: Chimera_V1_JobState) -> String {
        switch state {
        case .succeeded: "succeeded"
        case .failed: "failed"
        case .cancelled: "cancelled"
        case .running: "running"
        default: "unknown"
        }
    }

    private func jobStatus(_ id: UInt64, requestID: UInt64) -> WireMessage {
        if let current = aggregation, current.id == id || id == 0 {
            return WireMessage(
                .jobStatus(
                    Chimera_V1_JobStatus.with {
                        $0.jobID = current.id
                        $0.state = .running
                        $0.clocks = workerClocks(nil)
                        $0.report = aggregationReport(current)
                    }), requestID: requestID)
        }
        if let current = job, current.id == id || id == 0 {
            return WireMessage(
                .jobStatus(
                    Chimera_V1_JobStatus.with {
                        $0.jobID = current.id
                        $0.state = .running
                        $0.iteration = UInt64(current.state.completedIterations)
                        $0.loss = current.state.currentLoss ?? 0
                        $0.clocks = workerClocks(current)
                        $0.stalenessHistogram = current.state.stalenessHistogram.map(UInt64.init)
                        $0.report = fitReport(current)
                    }), requestID: requestID)
        }
        if let summary = lastJob, summary.id == id || id == 0 {
            return WireMessage(
                .jobStatus(
                    Chimera_V1_JobStatus.with {
                        $0.jobID = summary.id
                        $0.state = summary.state
                        $0.iteration = summary.report.iterations
                        $0.loss = summary.report.finalLoss
                        $0.clocks = summary.report.clocks
                        $0.stalenessHistogram = summary.report.stalenessHistogram
                        $0.report = summary.report
                        $0.error = summary.error
                    }), requestID: requestID)
        }
        return .error(.unknownJob, "no job \(id)", requestID: requestID)
    }

    private func predict(_ peer: Frame, _ request: Chimera_V1_PredictRequest, _ message: WireMessage) throws {
        let requestID = message.control.requestID
        if let refusal = modeMismatch(request.kind) {
            return try reply(to: peer, .error(.wrongMode, refusal, requestID: requestID))
        }
        let x: Tensor
        do throws(WireError) {
            x = try message.tensor(named: "x")
            guard x.dtype == .float32, x.shape.count == 2, x.shape[1] == request.columns.count else {
                throw WireError(.wrongTensor, "x must be float32 [rows, \(request.columns.count) columns], is \(x.dtype) \(x.shape)")
            }
        } catch {
            counters.reject(error.code.metricLabel)
            return try reply(to: peer, .error(.wrongShape, error.message, requestID: requestID))
        }
        if options.mode == .aggregation { return try predictEnsemble(peer, request, message, x: x) }
        guard let fitted = model else {
            return try reply(to: peer, .error(.notFitted, "no model yet: fit first", requestID: requestID))
        }
        let data: Dataset
        do {
            let positions = try planColumns(request.columns, for: fitted.featureNames)
            data = x.withUnsafeFloats { values in
                alignedRows(
                    values, width: request.columns.count, positions: positions,
                    featureNames: fitted.featureNames, standardizer: fitted.standardizer)
            }
        } catch {
            return try reply(to: peer, .error(.unknownColumn, error.description, requestID: requestID))
        }
        let objective = fitted.objective
        let predictions = objective.predict(weights: fitted.weights, data: data)
        var tensors = [NamedTensor("y", .float64(predictions.map(Double.init)))]
        if request.probabilities, let probabilities = objective.probabilities(weights: fitted.weights, data: data) {
            tensors.append(NamedTensor("proba", .float32(probabilities, shape: [data.rows, fitted.classes.count])))
        }
        let reply = Chimera_V1_PredictReply.with {
            $0.classes = fitted.classes.map(Double.init)
            $0.classNames = fitted.classNames ?? []
        }
        try self.reply(to: peer, WireMessage(.predictReply(reply), requestID: requestID, tensors: tensors))
    }

    /// Where the model's features are among `columns`, from the last request's plan when the columns
    /// are the same.
    func planColumns(_ columns: [String], for featureNames: [String]) throws(PredictionError) -> [Int] {
        if let plan = columnPlan, plan.columns == columns, plan.featureNames == featureNames { return plan.positions }
        let positions = try columnPositions(columns, for: featureNames)
        columnPlan = (columns, featureNames, positions)
        return positions
    }
}
