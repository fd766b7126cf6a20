import ChimeraML
import ChimeraWire
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// A parameter-server job: the round loop (pull, compute, push), straggler injection, data packing.
extension WorkerNode {
    // MARK: Jobs

    enum JobEnd { case finished, stopped, reRegister, shutdown }

    func runJob(_ start: Chimera_V1_JobStart, standardizer: Standardizer?) throws -> JobEnd {
        let configuration = try TrainingConfiguration(wire: start.config)
        if start.hasFeaturePartition {
            guard let block = start.featurePartition.blocks.first(where: { $0.workerID == workerID }) else {
                logger.info("job \(start.jobID) is feature-partitioned without a block for this worker; sitting it out")
                return .stopped
            }
            let data: Dataset
            do {
                data = try labelled(for: start)
            } catch {
                logger.info("job \(start.jobID): \(error); skipping it")
                return .stopped
            }
            return try runFeatureBlock(
                start, block, configuration: configuration, data: data, standardizer: standardizer)
        }
        let features = start.featureNames
        guard features == self.data.featureNames else {
            logger.info("job \(start.jobID) uses other columns than this shard; skipping it")
            return .stopped
        }
        let data: Dataset
        do {
            data = try labelled(for: start)
        } catch {
            logger.info("job \(start.jobID): \(error); skipping it")
            return .stopped
        }
        let classes = start.classes.map(Float.init)
        let objective: Objective
        do {
            objective = try Objective(configuration: configuration, features: features.count, classes: classes)
        } catch {
            logger.info("job \(start.jobID): \(error); skipping it")
            return .stopped
        }
        if start.hasPipeline {
            guard let assignment = start.pipeline.stages.first(where: { $0.workerID == workerID }) else {
                logger.info("job \(start.jobID) is a pipeline without a stage for this worker; sitting it out")
                return .stopped
            }
            return try runStage(
                start, assignment, configuration: configuration, objective: objective, data: data,
                standardizer: standardizer)
        }
        let batchRows = configuration.batchSize > 0 ? min(configuration.batchSize, data.rows) : data.rows
        if let refusal = MemoryBudget(limitMiB: options.maxMemoryMiB).refusal(
            objective: objective, configuration: configuration, batchRows: batchRows)
        {
            // Said to the master, which ends the job with it: never a crash or a job waiting for us.
            logger.warning("job \(start.jobID): \(refusal)")
            var result = Chimera_V1_WorkerResult()
            result.workerID = workerID
            result.session = session
            result.jobID = start.jobID
            result.failed = true
            result.error = refusal
            _ = try call(WireMessage(.workerResult(result)), timeout: options.requestTimeoutMilliseconds)
            return .stopped
        }
        // Sharded jobs: one socket per parameter server.
        let links: ShardLinks?
        do {
            links =
                start.servers.isEmpty
                ? nil
                : try ShardLinks(
                    context: context, shards: start.servers, curve: options.curve, weightCount: objective.weightCount)
        } catch {
            return try failJob(start.jobID, because: "\(error)")
        }
        // A sharded BSP job's loss includes the penalty, as the master adds it when it holds the weights.
        let addPenalty = links != nil && configuration.workerMode == .gradient && configuration.staleness == 0
        let regularizer = Regularizer(configuration)
        // Full-batch passes of single-output linear models run on the blocked SIMD layout (standardised
        // while packing); mini-batches, local SGD, softmax and networks use the row-major shard.
        let fullBatch = configuration.batchSize <= 0 || configuration.batchSize >= data.rows
        let blocked =
            objective.network == nil && objective.outputs == 1 && fullBatch && configuration.workerMode == .gradient
            ? blockedShard(data, standardizer: standardizer) : nil
        let shard = blocked != nil ? data : (standardizer?.apply(to: data) ?? data)
        var sampler = MinibatchSampler(rows: shard.rows, seed: configuration.seed ^ shardDigest)
        var gradient = [Float](repeating: 0, count: objective.weightCount)
        let localSGD = LocalSGD(objective: objective, configuration: configuration)
        // Compact pushes carry what rounding dropped into the next push.
        var feedback = ErrorFeedback(format: configuration.wireDType, count: objective.weightCount)
        let compact = configuration.wireDType.dtype
        // EASGD: this worker's own model, kept from round to round of the job.
        var elastic = ElasticWorker(objective: objective, configuration: configuration)
        var clock = Int(start.startClock)
        var stragglerRandom = SplitMix64(seed: options.straggler.seed ^ options.name.hashValueStable)
        logger.info("job \(start.jobID) from iteration \(clock)")
        heartbeat?.update(jobID: start.jobID, clock: UInt64(clock))
        // Read once: each access to `options` inside the loop copied the whole struct (strings, keys).
        let straggler = options.straggler
        let baseDelay = Double(options.delayPerIterationMilliseconds) / 1000
        let pullTimeout = options.pullTimeoutMilliseconds
        let computeThreads = options.computeThreads
        // The weights for the next iteration, when the previous push's reply carried them.
        var next: RoundReply?
        var weights = [Float](repeating: 0, count: objective.weightCount)
        let shape = [objective.outputs, objective.stride]
        let jobBegan = monotonicSeconds()
        var computeSeconds = 0.0
        var iterationsHere = 0
        var lastBroadcastCheck = 0.0
        // The last weights could not be used: this iteration reports instead of computing.
        var unusable = false
        while !isStopping {
            // Broadcasts (JobStop, Shutdown) are rare and the round's replies say when a job is done:
            // looked at every few ms, as each look costs libzmq two system calls.
            let now = monotonicSeconds()
            if now - lastBroadcastCheck >= 0.005 {
                lastBroadcastCheck = now
                if let end = try pollBroadcast(jobID: start.jobID) { return end }
            }
            // In its own scope: the reply's frames are free again (reused for the next receive) once
            // the weights are copied out.
            do {
                guard let reply = try roundWeights(job: start.jobID, clock: clock, carried: &next, timeout: pullTimeout)
                else { return abandonedWait(job: start.jobID) }
                let taken: Taken
                do {
                    taken = try take(reply, into: &weights, shape: shape, sharded: links != nil)
                } catch let error as WireError {
                    // Weights this worker cannot use: it says so with a non-finite loss (the master
                    // ends or backs off the fit) instead of leaving the job or the process.
                    logger.info("job \(start.jobID): unusable weights from the master (\(error.message)); reporting")
                    taken = .unusable
                }
                switch taken {
                case .weights: break
                case .sharded(let events):
                    if let end = try pullShards(
                        links!, job: start.jobID, clock: clock, events: events, into: &weights, timeout: pullTimeout)
                    {
                        return end
                    }
                case .unusable: unusable = true
                case .done:
                    let summary = String(
                        format: "job %llu done: %d iterations here, compute %.3f s, messaging and barrier %.3f s",
                        start.jobID,
                        iterationsHere, computeSeconds, monotonicSeconds() - jobBegan - computeSeconds)
                    logger.info("\(summary)", metadata: ["job": "\(start.jobID)", "iteration": "\(clock)"])
                    return .finished
                case .refused(let message):
                    return try handleRefusal(message)
                }
            }
            var push = Chimera_V1_GradientPush()
            push.workerID = workerID
            push.session = session
            push.jobID = start.jobID
            push.clock = UInt64(clock)
            push.thenPull = true
            let computeStart = monotonicSeconds()
            var delta: [Float] = []
            if unusable {
                push.loss = .nan
                push.rows = UInt64(data.rows)
            } else if configuration.workerMode != .gradient {
                // A model delta: local SGD's steps (ma, bmuf), or EASGD's elastic move.
                let (update, loss) =
                    configuration.workerMode == .elastic
                    ? elastic.round(centre: weights, data: shard, iteration: clock, sampler: &sampler)
                    : localSGD.delta(weights: weights, data: shard, iteration: clock, sampler: &sampler)
                push.loss = loss
                push.isDelta = true
                push.rows = UInt64(shard.rows)
                delta = update
            } else if let blocked {
                push.loss = objective.lossAndGradient(
                    weights: weights, rows: blocked, threads: computeThreads, gradient: &gradient)
                push.rows = UInt64(blocked.rows)
            } else {
                let batch = sampler.batch(of: shard, size: configuration.batchSize)
                push.loss = objective.lossAndGradient(weights: weights, data: batch, gradient: &gradient)
                push.rows = UInt64(batch.rows)
            }
            if addPenalty, !unusable, push.loss.isFinite {
                push.loss += regularizer.value(weights: weights, penalized: objective.penalized)
            }
            let passSeconds = monotonicSeconds() - computeStart
            computeSeconds += passSeconds
            if let refusal = scheduling.observe(passSeconds: passSeconds) { logger.info("\(refusal)") }
            iterationsHere += 1
            let extra = straggler.extraSeconds(
                compute: passSeconds, baseDelay: baseDelay,
                iteration: clock, random: &stragglerRandom)
            if extra > 0 { usleep(UInt32(min(extra, 3600) * 1e6)) }
            // An overflowed loss or update is reported as a non-finite loss with a zero update (the
            // wire carries only finite tensors); the master ends or backs off the fit.
            var update = push.isDelta ? delta : gradient
            if unusable || !push.loss.isFinite || !update.allFinite {
                if push.loss.isFinite { push.loss = .infinity }
                update = [Float](repeating: 0, count: objective.weightCount)
            }
            unusable = false
            if let links {
                // The ranges to the servers first: the master's push event must find them there.
                if let end = try pushShards(links, push, update: update, job: start.jobID, timeout: pullTimeout) {
                    return end
                }
            }
            let tensorName = push.isDelta ? "delta" : "gradient"
            let sent = compact == .float32 || links != nil ? update : feedback.compress(update)
            // The reply is the next iteration's weights (possibly parked at the barrier), or an error.
            guard
                let answer = try roundCall(
                    timeout: pullTimeout,
                    write: { socket, requestID in
                        if links != nil {
                            // Only the loss and the clock: the update went to the servers.
                            try socket.send(
                                try WireCodec.encode(WireMessage(.gradientPush(push), requestID: requestID)))
                            return
                        }
                        if compact != .float32 {
                            let tensor = Tensor.floats(sent, as: compact, shape: shape)
                            try socket.send(
                                try WireCodec.encode(
                                    WireMessage(
                                        .gradientPush(push), requestID: requestID,
                                        tensors: [NamedTensor(tensorName, tensor)])))
                            return
                        }
                        _ = try update.withUnsafeBufferPointer {
                            try RoundCodec.send(
                                push, requestID: requestID, update: $0, outputs: objective.outputs,
                                stride: objective.stride, on: socket)
                        }
                    })
            else { return abandonedWait(job: start.jobID) }
            switch pushReply(answer) {
            case .next(let carried): next = carried
            case .refused(let message): return try handleRefusal(message)
            }
            clock += 1
            heartbeat?.update(jobID: start.jobID, clock: UInt64(clock))
        }
        return .stopped
    }

    /// The weights reply for iteration `clock`: the previous push's reply when it carried them, else a
    /// pull's (parked at the barrier until it may start). nil when none came in time.
    func roundWeights(job: UInt64, clock: Int, carried: inout RoundReply?, timeout: Int32) throws -> RoundReply? {
        if let reply = carried {
            carried = nil
            return reply
        }
        let pull = Chimera_V1_WeightPull.with {
            $0.workerID = workerID
            $0.session = session
            $0.jobID = job
            $0.clock = UInt64(clock)
        }
        return try roundCall(
            timeout: timeout,
            write: { socket, requestID in
                try socket.send(try WireCodec.encode(WireMessage(.weightPull(pull), requestID: requestID)))
            })
    }

    enum PushReply {
        /// The next iteration's weights (nil: an ack, pull them).
        case next(RoundReply?)
        case refused(WireMessage)
    }

    /// What a push's reply means for the next iteration.
    func pushReply(_ answer: RoundReply) -> PushReply {
        switch answer {
        case .fast, .malformed: return .next(answer)
        case .generic(let message):
            switch message.body {
            case .weights: return .next(answer)
            case .ack: return .next(nil)
            default: return .refused(message)
            }
        }
    }

    /// A reply in a training round: weights read by the round codec, or any message the generic way.
    enum RoundReply {
        case fast(RoundCodec.Message<Chimera_V1_Weights>)
        case generic(WireMessage)
        /// A reply this worker could not decode (e.g. a non-finite weight).
        case malformed(WireError)
    }

    /// Sends a round request (pull or push; `write` sends its frames) and reads the reply; nil when
    /// none came in time.
    func roundCall(timeout: Int32, write: (Socket, UInt64) throws -> Void) throws -> RoundReply? {
        guard
            let frames = try requests.request(
                timeoutMilliseconds: timeout, abandon: { self.shouldAbandonWait }, write: write)
        else { return nil }
        if let weights = RoundCodec.decodeWeights(frames[...]) { return .fast(weights) }
        do {
            return .generic(try WireCodec.decode(frames))
        } catch {
            return .malformed(error)
        }
    }

    enum Taken {
        case weights
        /// A sharded job's go-ahead: read the weights from the servers once they replayed `events`.
        case sharded(events: UInt64)
        case done
        case refused(WireMessage)
        case unusable
    }

    /// Copies a round reply's weights into `weights`; or says the job is done, or the reply refused.
    func take(_ reply: RoundReply, into weights: inout [Float], shape: [Int], sharded: Bool = false) throws -> Taken {
        let header: Chimera_V1_Weights
        let received: Tensor?  // a `done` reply may come without weights
        switch reply {
        case .fast(let message):
            header = message.body
            received = message.tensor
        case .generic(let message):
            guard case .weights(let body) = message.body else { return .refused(message) }
            header = body
            received = body.done || sharded ? nil : try message.tensor(named: "weights")
        case .malformed(let error):
            throw error
        }
        if header.done { return .done }
        if sharded { return .sharded(events: header.events) }
        guard let received, received.shape == shape, [.float32, .bfloat16, .float16].contains(received.dtype) else {
            let found = received.map { "\($0.dtype) \($0.shape)" } ?? "missing"
            throw WireError(.wrongTensor, "tensor \"weights\" is \(found), expected float32 \(shape)")
        }
        weights.withUnsafeMutableBufferPointer { received.readFloats(into: $0) }
        return .weights
    }

    func blockedShard(_ data: Dataset, standardizer: Standardizer?) -> BlockedRows {
        if let packed, packed.standardizer == standardizer, packed.labelNames == data.labelNames { return packed.rows }
        let rows = BlockedRows(data, standardizer: standardizer)
        packed = (standardizer, data.labelNames, rows)
        return rows
    }

    /// The shard with its labels as the job numbers them: class names become indices into the job's
    /// class names (the union of every worker's).
    func labelled(for start: Chimera_V1_JobStart) throws -> Dataset {
        if start.classNames.isEmpty {
            guard data.labelNames.isEmpty else {
                throw ClusterError("this shard's labels are class names, the job's numbers")
            }
            return data
        }
        guard let relabelled = data.relabelled(into: start.classNames) else {
            throw ClusterError(
                data.labelNames.isEmpty
                    ? "this shard's labels are numbers, the job's class names"
                    : "this shard has classes the job does not know (\(Set(data.labelNames).subtracting(start.classNames).sorted()))"
            )
        }
        return relabelled
    }
}
