import ChimeraML
import ChimeraWire
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// Aggregation mode: workers fit bagged trees; the master keeps the ensemble and predicts, or fans the
/// rows out to the workers.
extension ChimeraMaster {
    var isBusy: Bool { jobs.isBusy }

    func startAggregation(_ peer: Frame, _ request: Chimera_V1_FitRequest, _ requestID: UInt64) throws {
        func refuse(_ code: Chimera_V1_ErrorCode, _ text: String) throws { try refuseFit(peer, requestID, code, text) }
        var configuration: AggregationConfiguration
        do {
            configuration = try AggregationConfiguration(wire: request.config)
        } catch {
            return try refuse(.badRequest, error.description)
        }
        let (ready, labels): ([WorkerRecord], JobLabels)
        switch jobParticipants() {
        case .success(let found): (ready, labels) = found
        case .failure(let refusal): return try refuse(refusal.code, refusal.text)
        }
        let first = ready[0]
        if request.config.model == .unspecified, request.config.criterion.isEmpty, labels.kind == .continuous {
            configuration.tree.criterion = .squaredError
            logger.info("the fit names no model and the labels are continuous: regression trees")
        }
        if !labels.classNames.isEmpty && configuration.task != .classification {
            return try refuse(
                .badRequest,
                "the labels are class names (\(labels.classNames.prefix(5).joined(separator: ", "))); regression trees need numbers"
            )
        }
        var classes: [Float] = []
        if configuration.task == .classification {
            classes = labels.values
            guard classes.count >= 2 else {
                return try refuse(
                    .badRequest,
                    "a classification tree needs at least 2 classes; the workers' labels have \(classes.count)")
            }
        }
        var current = AggregationJob(
            id: jobs.begin(.aggregation), configuration: configuration, featureNames: first.featureNames,
            classes: classes,
            classNames: labels.classNames,
            startedAt: monotonicSeconds(), bytesAtStart: (counters.bytesSent, counters.bytesReceived),
            pending: Set(ready.map(\.id)),
            participants: Dictionary(uniqueKeysWithValues: ready.map { ($0.id, $0.name) }))
        if !request.asynchronous { current.client = (try copy(peer), requestID) }
        aggregation = current
        logger.info(
            "job \(current.id) started: bagging \(configuration.task.rawValue) trees (\(configuration.tree.criterion.rawValue)), \(ready.count) workers × \(configuration.treesPerWorker) trees"
        )
        try publish(WireMessage(.jobStart(current.start)))
        if request.asynchronous {
            try reply(
                to: peer,
                WireMessage(
                    .fitReply(
                        Chimera_V1_FitReply.with {
                            $0.jobID = current.id; $0.state = .running; $0.jobToken = jobToken(current.id)
                        }), requestID: requestID))
        }
    }

    func handleWorkerResult(_ peer: Frame, _ result: Chimera_V1_WorkerResult, _ message: WireMessage) throws {
        let requestID = message.control.requestID
        if let current = job, current.id == result.jobID {
            // A parameter-server job a worker cannot take part in (its model does not fit in memory):
            // the job ends now with the worker's reason rather than waiting for it.
            try reply(to: peer, WireMessage(.ack(Chimera_V1_Ack.with { $0.jobID = current.id }), requestID: requestID))
            guard result.failed else { return }
            let name = membership[result.workerID]?.name ?? "worker \(result.workerID)"
            logger.warning("\(name) cannot take part in job \(current.id): \(result.error)")
            return try finishJob(state: .failed, error: "\(name) \(result.error)", code: .badRequest)
        }
        guard var current = aggregation, current.id == result.jobID, current.pending.contains(result.workerID) else {
            counters.reject("stale")
            return try reply(
                to: peer,
                .error(.stale, "job \(result.jobID) is not waiting for worker \(result.workerID)", requestID: requestID)
            )
        }
        let name = current.participants[result.workerID] ?? "worker \(result.workerID)"
        current.pending.remove(result.workerID)
        var refusal: String?
        if result.failed {
            current.failures[name] = result.error.isEmpty ? "failed" : result.error
            logger.info("\(name) failed its fit: \(result.error)")
        } else {
            do throws(ClusterError) {
                current.trees[result.workerID] = try decodeMembers(message, for: current)
            } catch {
                counters.reject("malformed_tree")
                refusal = error.description
                current.failures[name] = error.description
                logger.info("refused the trees of \(name): \(error.description)")
            }
        }
        aggregation = current
        if let refusal {
            try reply(to: peer, .error(.badRequest, refusal, requestID: requestID))
        } else {
            try reply(to: peer, WireMessage(.ack(Chimera_V1_Ack.with { $0.jobID = current.id }), requestID: requestID))
        }
        try checkAggregationProgress()
    }

    /// The trees of a WorkerResult, checked against the job (features, outputs, task).
    func decodeMembers(_ message: WireMessage, for current: AggregationJob) throws(ClusterError) -> [DecisionTree] {
        let named = message.tensors.filter { $0.name.hasPrefix("tree.") }
        guard !named.isEmpty else { throw ClusterError("the result holds no \"tree.<k>\" tensor") }
        return try named.map { (item) throws(ClusterError) in
            guard item.tensor.dtype == .uint8, item.tensor.shape.count == 1 else {
                throw ClusterError(
                    "tensor \(item.name) must be uint8 [bytes], is \(item.tensor.dtype) \(item.tensor.shape)")
            }
            let tree: DecisionTree
            do {
                tree = try TreeCodec.decode(item.tensor.byteArray())
            } catch {
                throw ClusterError("\(item.name): \(error)")
            }
            guard tree.featureCount == current.featureNames.count, tree.outputs == current.outputs,
                tree.task == current.configuration.task
            else {
                throw ClusterError(
                    "\(item.name): a \(tree.task.rawValue) tree over \(tree.featureCount) features with \(tree.outputs) outputs; the job needs \(current.configuration.task.rawValue) over \(current.featureNames.count) with \(current.outputs)"
                )
            }
            return tree
        }
    }

    /// A participant died: its trees will not come.
    func aggregationWorkerLost(_ id: UInt32, reason: String) throws {
        if var current = aggregation, current.pending.contains(id) {
            current.pending.remove(id)
            current.failures[current.participants[id] ?? "worker \(id)"] = reason
            aggregation = current
            try checkAggregationProgress()
        }
        fanOuts.lost(id, reason: "\(membership[id]?.name ?? "worker \(id)"): \(reason)")
        try answerFinishedFanOuts(now: monotonicSeconds())
    }

    func checkAggregationProgress() throws {
        guard let current = aggregation, current.pending.isEmpty else { return }
        let members = current.trees.sorted { $0.key < $1.key }
        let trees = members.flatMap(\.value)
        if trees.isEmpty {
            let reasons = current.failures.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(
                separator: "; ")
            return try finishAggregation(state: .failed, error: "every worker failed (\(reasons))")
        }
        ensemble = FittedEnsemble(
            ensemble: TreeEnsemble(
                task: current.configuration.task, featureNames: current.featureNames, classes: current.classes,
                trees: trees),
            classNames: current.classNames,
            configuration: current.configuration,
            membersByWorker: Dictionary(
                uniqueKeysWithValues: members.map { (current.participants[$0.key] ?? "\($0.key)", $0.value.count) }))
        if let directory = options.modelDirectory, let fitted = ensemble {
            do {
                try fitted.save(
                    to: directory.appendingPathComponent("ensemble.json"), permissions: options.modelFileMode)
            } catch {
                logger.info("could not save ensemble.json: \(error)")
            }
        }
        try finishAggregation(state: .succeeded, error: "")
    }

    func finishAggregation(state: Chimera_V1_JobState, error: String) throws {
        guard let current = aggregation else { return }
        aggregation = nil
        jobs.end()
        let report = aggregationReport(current)
        lastJob = JobSummary(
            id: current.id, state: state, report: report, error: error, lossHistory: [],
            config: current.configuration.wire)
        counters.finished(jobStateName(state))
        try publish(
            WireMessage(
                .jobStop(
                    Chimera_V1_JobStop.with {
                        $0.jobID = current.id; $0.reason = error.isEmpty ? "done" : error; $0.failed = state == .failed
                    })))
        let outcome = state == .succeeded ? "finished" : (state == .cancelled ? "was cancelled" : "failed: \(error)")
        logger.info(
            "\(String(format: "job %llu %@: %d trees from %d workers, %.3f s", current.id, outcome, report.members, current.trees.count, report.wallSeconds))",
            metadata: ["job": "\(current.id)"])
        guard let client = current.client else { return }
        if state == .failed {
            try reply(to: client.peer, .error(.noWorkers, error, requestID: client.requestID))
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

    func aggregationReport(_ current: AggregationJob) -> Chimera_V1_FitReport {
        Chimera_V1_FitReport.with {
            $0.wallSeconds = monotonicSeconds() - current.startedAt
            $0.members = UInt32(current.trees.values.reduce(0) { $0 + $1.count })
            $0.clocks = workerClocks(nil)
            $0.bytesSent = UInt64(counters.bytesSent - current.bytesAtStart.sent)
            $0.bytesReceived = UInt64(counters.bytesReceived - current.bytesAtStart.received)
            $0.failedWorkers = current.failures.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
        }
    }

    // MARK: Prediction

}
