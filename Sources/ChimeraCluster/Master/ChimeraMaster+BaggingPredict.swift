import ChimeraML
import ChimeraWire
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// Predictions with the bagged ensemble: answered by the master, or fanned out to the workers.
extension ChimeraMaster {
    func predictEnsemble(_ peer: Frame, _ request: Chimera_V1_PredictRequest, _ message: WireMessage, x: Tensor) throws
    {
        let requestID = message.control.requestID
        guard let fitted = ensemble else {
            return try reply(to: peer, .error(.notFitted, "no ensemble yet: fit first", requestID: requestID))
        }
        let data: Dataset
        do {
            let names = fitted.ensemble.featureNames
            let positions = try planColumns(request.columns, for: names)
            data = x.withUnsafeFloats { values in
                alignedRows(
                    values, width: request.columns.count, positions: positions, featureNames: names,
                    standardizer: nil)
            }
        } catch {
            return try reply(to: peer, .error(.unknownColumn, error.description, requestID: requestID))
        }
        if request.fanOut {
            return try startFanOut(
                peer, requestID: requestID, data: data, probabilities: request.probabilities, fitted: fitted)
        }
        try answerPrediction(
            peer, requestID: requestID, means: fitted.ensemble.meanOutputs(data), rows: data.rows,
            probabilities: request.probabilities, fitted: fitted)
    }

    func answerPrediction(
        _ peer: Frame, requestID: UInt64, means: [Float], rows: Int, probabilities: Bool, fitted: FittedEnsemble
    ) throws {
        let ensemble = fitted.ensemble
        // Two numeric classes answer P(class 1), as the Python Chimera's mean of 0/1 votes; named
        // classes (which it cannot average) answer the most probable class.
        let y =
            fitted.classNames.isEmpty
            ? ensemble.predictions(fromMeans: means, rows: rows)
            : ensemble.labels(fromMeans: means, rows: rows).map(Double.init)
        var tensors = [NamedTensor("y", .float64(y))]
        if probabilities && ensemble.task == .classification {
            tensors.append(NamedTensor("proba", .float32(means, shape: [rows, ensemble.classes.count])))
        }
        let reply = Chimera_V1_PredictReply.with {
            $0.classes = ensemble.classes.map(Double.init)
            $0.classNames = fitted.classNames
        }
        try self.reply(to: peer, WireMessage(.predictReply(reply), requestID: requestID, tensors: tensors))
    }

    func startFanOut(_ peer: Frame, requestID: UInt64, data: Dataset, probabilities: Bool, fitted: FittedEnsemble)
        throws
    {
        let names = Set(fitted.membersByWorker.keys)
        let expected = membership.subscribed(named: names)
        guard !expected.isEmpty else {
            return try reply(
                to: peer,
                .error(.noWorkers, "no worker holding members of the ensemble is connected", requestID: requestID))
        }
        guard
            let taskID = fanOuts.open(
                ClientAddress(peer: try copy(peer), requestID: requestID), rows: data.rows,
                outputs: fitted.ensemble.outputs,
                probabilities: probabilities, expected: expected,
                deadline: monotonicSeconds() + Double(options.fanOutTimeoutMilliseconds) / 1000)
        else {
            counters.reject("too_many_fan_outs")
            return try reply(
                to: peer,
                .error(
                    .limit, "\(fanOuts.tasks.count) fan-out predictions are waiting for the workers: try again",
                    requestID: requestID))
        }
        let task = Chimera_V1_MemberPredict.with {
            $0.taskID = taskID
            $0.jobID = lastJob?.id ?? 0
        }
        try publish(
            WireMessage(
                .memberPredict(task),
                tensors: [NamedTensor("x", .float32(data.features, shape: [data.rows, data.columns]))]))
    }

    func handleMemberPrediction(_ peer: Frame, _ answer: Chimera_V1_MemberPrediction, _ message: WireMessage) throws {
        let requestID = message.control.requestID
        try reply(to: peer, WireMessage(.ack(Chimera_V1_Ack()), requestID: requestID))
        guard let task = fanOuts.tasks[answer.taskID], task.expected.contains(answer.workerID), let fitted = ensemble
        else { return }
        let name = membership[answer.workerID]?.name ?? "worker \(answer.workerID)"
        var failure = answer.failed ? "\(name): \(answer.error)" : nil
        var means: Tensor?
        if failure == nil {
            do throws(WireError) {
                means = try message.tensor(
                    named: "means", dtype: .float32, shape: [task.rows, fitted.ensemble.outputs])
            } catch {
                counters.reject(error.code.metricLabel)
                failure = "\(name): \(error.message)"
            }
        }
        _ = fanOuts.answer(answer.taskID, from: answer.workerID, members: Int(answer.members), failure: failure) {
            sums, weight in
            sums.withUnsafeMutableBufferPointer { means?.accumulateFloat32(into: $0, scale: weight) }
        }
        try answerFinishedFanOuts(now: monotonicSeconds())
    }

    /// Answers the fan-out predictions every expected worker answered, or whose deadline passed.
    func answerFinishedFanOuts(now: Double) throws {
        for outcome in fanOuts.finished(now: now, name: { membership[$0]?.name ?? "worker \($0)" }) {
            switch outcome {
            case .failed(let client, let reasons):
                try reply(
                    to: client.peer,
                    .error(
                        .noWorkers, "every worker's prediction failed (\(reasons.joined(separator: "; ")))",
                        requestID: client.requestID))
            case .answered(let client, let means, let rows, let probabilities, let without):
                if !without.isEmpty {
                    logger.info("fan-out prediction averaged without: \(without.joined(separator: ", "))")
                }
                guard let fitted = ensemble else {
                    try reply(
                        to: client.peer, .error(.notFitted, "no ensemble yet: fit first", requestID: client.requestID))
                    continue
                }
                try answerPrediction(
                    client.peer, requestID: client.requestID, means: means, rows: rows, probabilities: probabilities,
                    fitted: fitted)
            }
        }
    }
}
