import ChimeraML
import ChimeraWire
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// Bagging jobs: fitting this worker's trees, answering fan-out predictions; refusals and broadcasts
/// read between iterations.
extension WorkerNode {
    // MARK: Aggregation

    /// Fits this worker's bagged trees and sends them to the master (failures are reported, not thrown).
    func fitMembers(_ start: Chimera_V1_JobStart) throws {
        let began = monotonicSeconds()
        var result = Chimera_V1_WorkerResult()
        result.workerID = workerID
        result.session = session
        result.jobID = start.jobID
        var tensors: [NamedTensor] = []
        heartbeat?.update(jobID: start.jobID, clock: 0)
        do {
            let configuration = try AggregationConfiguration(wire: start.config)
            guard start.featureNames == self.data.featureNames else {
                throw ClusterError("the job's columns differ from this shard's")
            }
            let data = try labelled(for: start)
            let classes = start.classes.map(Float.init)
            if bins?.maxBins != configuration.tree.maxBins {
                bins = FeatureBins(data, maxBins: configuration.tree.maxBins)
            }
            let trees = try Bagging.fit(
                data: data, classes: classes, settings: configuration.tree, trees: configuration.treesPerWorker,
                workerSeed: shardDigest, bootstrap: configuration.bootstrap, bins: bins)
            let delay = options.delayPerIterationMilliseconds * trees.count
            if delay > 0 { usleep(UInt32(min(delay, 3_600_000)) * 1000) }
            tensors = trees.enumerated().map { NamedTensor("tree.\($0.offset)", .bytes(TreeCodec.encode($0.element))) }
            members = TreeEnsemble(
                task: configuration.task, featureNames: data.featureNames, classes: classes, trees: trees)
            let summary = String(
                format: "job %llu: fitted %d trees (%d leaves) in %.3f s", start.jobID, trees.count,
                trees.reduce(0) { $0 + $1.leafCount }, monotonicSeconds() - began)
            logger.info("\(summary)", metadata: ["job": "\(start.jobID)"])
        } catch {
            result.failed = true
            result.error = "\(error)"
            logger.info("job \(start.jobID) failed: \(error)")
        }
        result.seconds = monotonicSeconds() - began
        guard
            let reply = try call(
                WireMessage(.workerResult(result), tensors: tensors), timeout: options.requestTimeoutMilliseconds)
        else {
            logger.info("the master did not acknowledge the trees of job \(start.jobID)")
            return
        }
        if case .error(let error) = reply.body { logger.info("the master refused the trees: \(error.message)") }
    }

    /// Fan-out prediction: the mean of this worker's members on the broadcast rows.
    func answerMemberPredict(_ task: Chimera_V1_MemberPredict, _ message: WireMessage) throws {
        var answer = Chimera_V1_MemberPrediction()
        answer.workerID = workerID
        answer.session = session
        answer.taskID = task.taskID
        var tensors: [NamedTensor] = []
        if let members, !members.trees.isEmpty {
            do throws(WireError) {
                let x = try message.tensor(named: "x")
                guard x.dtype == .float32, x.shape.count == 2, x.shape[1] == members.featureNames.count else {
                    throw WireError(
                        .wrongTensor,
                        "x must be float32 [rows, \(members.featureNames.count)], is \(x.dtype) \(x.shape)")
                }
                let rows = Dataset(
                    featureNames: members.featureNames, features: x.floats(),
                    labels: [Float](repeating: 0, count: x.shape[0]))
                tensors = [
                    NamedTensor("means", .float32(members.meanOutputs(rows), shape: [x.shape[0], members.outputs]))
                ]
                answer.members = UInt32(members.trees.count)
            } catch {
                answer.failed = true
                answer.error = error.message
            }
        } else {
            answer.failed = true
            answer.error = "no fitted members"
        }
        _ = try call(
            WireMessage(.memberPrediction(answer), tensors: tensors), timeout: options.requestTimeoutMilliseconds)
    }

    /// An Error reply during a job: re-register when the master forgot us, otherwise stop this job.
    func handleRefusal(_ reply: WireMessage) throws -> JobEnd {
        guard case .error(let error) = reply.body else { return .stopped }
        logger.info("master refused: \(error.message)")
        return error.code == .unknownWorker || error.code == .stale ? .reRegister : .stopped
    }

    /// Reads pending broadcasts between iterations: JobStop ends the job, Shutdown the process.
    func pollBroadcast(jobID: UInt64) throws -> JobEnd? {
        // Asking first costs no allocation: nothing is waiting in almost every iteration.
        guard let sub = broadcast, try sub.pendingEvents().contains(.readable) else { return nil }
        while let frames = try sub.receiveMultipart(dontWait: true) {
            guard let message = try? WireCodec.decode(frames) else { continue }
            switch message.body {
            case .sync(let sync): _ = try confirmSubscription(sync.sequence)
            case .jobStop(let stop) where stop.jobID == jobID: return .finished
            case .shutdown: return .shutdown
            default: continue
            }
        }
        return nil
    }
}
