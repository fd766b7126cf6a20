import ChimeraML
import ChimeraWire
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// A feature-partitioned job's block: each iteration pulls its columns' weights, sends its partial
/// margins X_j W_jᵀ, gets back the whole model's margins (every block's plus the bias), and pushes
/// the gradient of its columns and of the bias (full-batch gradient descent over every row).
extension WorkerNode {
    func runFeatureBlock(
        _ start: Chimera_V1_JobStart, _ block: Chimera_V1_ColumnBlock, configuration: TrainingConfiguration,
        data: Dataset, standardizer: Standardizer?
    ) throws -> JobEnd {
        let columns = Int(block.firstColumn)..<Int(block.endColumn)
        let features = start.featureNames
        guard columns.upperBound <= features.count, Array(features[columns]) == data.featureNames else {
            logger.info("job \(start.jobID): its block of columns is not this shard's; sitting it out")
            return .stopped
        }
        let objective: Objective
        do {
            objective = try Objective(
                configuration: configuration, features: features.count, classes: start.classes.map(Float.init))
        } catch {
            logger.info("job \(start.jobID): \(error); skipping it")
            return .stopped
        }
        let computation = FeatureBlock(objective: objective, columns: columns)
        // The job standardises every column; this block applies its own columns' part.
        let shard =
            standardizer.map {
                Standardizer(mean: Array($0.mean[columns]), scale: Array($0.scale[columns])).apply(to: data)
            } ?? data
        var weights = [Float](repeating: 0, count: objective.outputs * columns.count)
        var gradient = [Float](repeating: 0, count: objective.outputs * (columns.count + 1))
        var clock = Int(start.startClock)
        var next: RoundReply?
        let timeout = options.pullTimeoutMilliseconds
        logger.info(
            "job \(start.jobID): feature block of columns \(columns.lowerBound)..<\(columns.upperBound) of \(features.count), from iteration \(clock)"
        )
        heartbeat?.update(jobID: start.jobID, clock: UInt64(clock))
        while !isStopping {
            if let end = try pollBroadcast(jobID: start.jobID) { return end }
            do {
                guard let reply = try roundWeights(job: start.jobID, clock: clock, carried: &next, timeout: timeout)
                else { return abandonedWait(job: start.jobID) }
                switch try take(reply, into: &weights, shape: computation.weightShape) {
                case .weights: break
                case .unusable, .sharded: return .stopped
                case .done:
                    logger.info("job \(start.jobID) done: feature block, \(clock) iterations")
                    return .finished
                case .refused(let message): return try handleRefusal(message)
                }
            }
            // The margins: this block's part out, the sum back.
            let partial = computation.partialMargins(blockWeights: weights, data: shard)
            let request = Chimera_V1_PartialMargins.with {
                $0.workerID = workerID
                $0.session = session
                $0.jobID = start.jobID
                $0.clock = UInt64(clock)
            }
            guard
                let answer = try call(
                    WireMessage(
                        .partialMargins(request),
                        tensors: [NamedTensor("margins", .float32(partial, shape: [shard.rows, objective.outputs]))]),
                    timeout: timeout)
            else { return abandonedWait(job: start.jobID) }
            guard case .margins(let header) = answer.body else { return try handleRefusal(answer) }
            if header.done { return .finished }
            let margins = try answer.tensor(named: "margins", dtype: .float32, shape: [shard.rows, objective.outputs])
                .floats()
            var push = Chimera_V1_GradientPush()
            push.workerID = workerID
            push.session = session
            push.jobID = start.jobID
            push.clock = UInt64(clock)
            push.thenPull = true
            push.rows = UInt64(shard.rows)
            push.loss = computation.lossAndGradient(margins: margins, data: shard, gradient: &gradient)
            if !push.loss.isFinite || !gradient.allFinite {
                if push.loss.isFinite { push.loss = .infinity }
                for index in gradient.indices { gradient[index] = 0 }
            }
            guard
                let pushed = try roundCall(
                    timeout: timeout,
                    write: { socket, requestID in
                        try socket.send(
                            try WireCodec.encode(
                                WireMessage(
                                    .gradientPush(push), requestID: requestID,
                                    tensors: [
                                        NamedTensor("gradient", .float32(gradient, shape: computation.gradientShape))
                                    ])))
                    })
            else { return abandonedWait(job: start.jobID) }
            switch pushReply(pushed) {
            case .next(let carried): next = carried
            case .refused(let message): return try handleRefusal(message)
            }
            clock += 1
            heartbeat?.update(jobID: start.jobID, clock: UInt64(clock))
        }
        return .stopped
    }
}
