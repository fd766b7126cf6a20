import ChimeraML
import ChimeraWire
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// A pipeline job's stage: each iteration runs its micro-batches' passes in the schedule's order —
/// activations from the stage below and gradients from the stage above arrive on this worker's PULL
/// socket, its own go out on PUSH sockets to its neighbours. When the stages own their weights
/// (`Pipeline.stage_owned`) it pulls its slice once, steps it itself and tells the master only the
/// loss (sending the slice for checkpoints and at the end); otherwise each iteration pulls its slice
/// from the master and pushes its slice of the gradient.
extension WorkerNode {
    /// Binds the stage socket that neighbouring stages push to (once per process).
    func bindStageSocket() throws {
        guard stageSocket == nil, let host = options.stageBind else { return }
        let socket = try context.socket(.pull)
        try socket.setLinger(milliseconds: 0)
        try socket.setReceiveHighWaterMark(0)
        // With CURVE the stage socket is a CURVE server with this worker's key pair (the master tells
        // the neighbours its public key): activations travel encrypted. Who may feed it is the stage
        // secret's business, checked on every message.
        if let curve = options.curve { try socket.setCurveServer(secretKey: curve.keyPair.secretKey) }
        try socket.setReceiveTimeout(milliseconds: 100)
        _ = try socket.bind("tcp://\(host):0")
        stageEndpoint = try socket.lastEndpoint()
        stageSocket = socket
    }

    func runStage(
        _ start: Chimera_V1_JobStart, _ assignment: Chimera_V1_StageAssignment, configuration: TrainingConfiguration,
        objective: Objective, data: Dataset, standardizer: Standardizer?
    ) throws -> JobEnd {
        guard let network = objective.network, let inbox = stageSocket else {
            logger.info("job \(start.jobID): this worker has no stage socket; sitting the pipeline out")
            return .stopped
        }
        let pipeline = start.pipeline
        let stage = Int(assignment.stage)
        let replica = assignment.replica
        let stages = pipeline.stages.filter { $0.replica == replica }.count
        let layers = Int(assignment.firstLayer)..<Int(assignment.endLayer)
        guard layers.lowerBound >= 0, layers.upperBound <= network.layers, !layers.isEmpty,
            network.parameterRange(layers: layers).count == Int(assignment.parameterCount)
        else {
            logger.warning("job \(start.jobID): the stage's layers \(layers) do not fit the network \(network.summary)")
            return .stopped
        }
        var computation = StageComputation(network: network, layers: layers)
        // Neighbours: the stage below gets gradients, the stage above activations.
        func neighbour(_ index: Int) throws -> Socket? {
            guard let peer = pipeline.stages.first(where: { $0.replica == replica && Int($0.stage) == index }) else {
                return nil
            }
            let socket = try context.socket(.push)
            try socket.setLinger(milliseconds: 0)
            try socket.setSendHighWaterMark(0)
            if let curve = options.curve {
                guard peer.publicKey.utf8.count == 40 else {
                    throw ClusterError("stage \(index) of the pipeline has no CURVE key: this cluster uses CURVE")
                }
                try CurveClientSettings(serverPublicKey: peer.publicKey, keyPair: curve.keyPair).apply(to: socket)
            }
            try socket.connect(peer.endpoint)
            return socket
        }
        let below: Socket?
        let above: Socket?
        do {
            below = try neighbour(stage - 1)
            above = try neighbour(stage + 1)
        } catch {
            return try failJob(start.jobID, because: "cannot link to the neighbouring stages: \(error)")
        }
        defer {
            below?.close()
            above?.close()
        }
        let shard = standardizer?.apply(to: data) ?? data
        // The same shard and seed in every stage of the replica: the same batches, row for row.
        var sampler = MinibatchSampler(rows: shard.rows, seed: configuration.seed ^ shardDigest)
        var mailbox = StageMailbox(job: start.jobID, secret: pipeline.secret, stage: stage)
        var weights = [Float](repeating: 0, count: computation.parameters.count)
        let shape = [1, weights.count]
        var clock = Int(start.startClock)
        var next: RoundReply?
        // Owned weights: this stage's optimizer and penalty, the same the master would run on its slice.
        let owned = pipeline.stageOwned
        var optimizer = Optimizer(configuration, weightCount: weights.count)
        optimizer.restore(steps: clock)
        let regularizer = Regularizer(configuration)
        let parameters = network.parameterRange(layers: layers)
        let penalized = objective.penalized.compactMap { range -> Range<Int>? in
            let overlap = range.clamped(to: parameters)
            return overlap.isEmpty
                ? nil : (overlap.lowerBound - parameters.lowerBound)..<(overlap.upperBound - parameters.lowerBound)
        }
        var haveWeights = false
        let pullTimeout = options.pullTimeoutMilliseconds
        logger.info(
            "job \(start.jobID): stage \(stage) of \(stages) (replica \(replica)), layers \(layers.lowerBound)..<\(layers.upperBound), \(weights.count) parameters, from iteration \(clock)"
        )
        heartbeat?.update(jobID: start.jobID, clock: UInt64(clock))
        while !isStopping {
            if let end = try pollBroadcast(jobID: start.jobID) { return end }
            do {
                guard let reply = try roundWeights(job: start.jobID, clock: clock, carried: &next, timeout: pullTimeout)
                else { return abandonedWait(job: start.jobID) }
                switch owned && haveWeights ? try go(reply) : try take(reply, into: &weights, shape: shape) {
                case .weights: haveWeights = true
                case .unusable, .sharded: return .stopped
                case .done:
                    logger.info("job \(start.jobID) done: stage \(stage), \(clock) iterations")
                    return .finished
                case .refused(let message): return try handleRefusal(message)
                }
            }
            // One iteration: the batch in micro-batches, in the schedule's order.
            let batch = sampler.batch(of: shard, size: configuration.batchSize)
            let parts = microBatchRanges(rows: batch.rows, parts: configuration.microBatches)
            let steps = configuration.pipelineSchedule.steps(stage: stage, stages: stages, microBatches: parts.count)
            computation.begin()
            mailbox.begin(iteration: clock)
            var stats = Chimera_V1_StageStats()
            var loss = 0.0
            let scale = 1 / Float(max(batch.rows, 1))
            for step in steps {
                switch step {
                case .forward(let m):
                    let rows = parts[m].count
                    let input: [Float]
                    if computation.isFirst {
                        input = Array(
                            batch.features[
                                (parts[m].lowerBound * batch.columns)..<(parts[m].upperBound * batch.columns)])
                    } else {
                        guard
                            let received = try awaitStage(
                                &mailbox, inbox, job: start.jobID, backward: false, micro: m,
                                shape: [rows, computation.inputWidth], stats: &stats)
                        else { return try endedWhileWaiting(start.jobID) }
                        input = received.values
                    }
                    let began = monotonicSeconds()
                    let output = weights.withUnsafeBufferPointer {
                        computation.forward(micro: m, input: input, rows: rows, weights: $0.baseAddress!)
                    }
                    stats.computeSeconds += monotonicSeconds() - began
                    stats.peakMicroBatches = max(stats.peakMicroBatches, UInt32(computation.heldMicroBatches))
                    stats.peakActivationBytes = max(stats.peakActivationBytes, UInt64(computation.heldBytes))
                    if let output, let above {
                        stats.bytesSent += try sendStage(
                            above, job: start.jobID, iteration: clock, micro: m, backward: false, loss: 0,
                            secret: pipeline.secret, stage: stage, values: output, rows: rows)
                    }
                case .backward(let m):
                    let rows = parts[m].count
                    var microLoss = 0.0
                    var gradient: [Float]?
                    if computation.isLast {
                        let began = monotonicSeconds()
                        let labels = Array(batch.labels[parts[m]])
                        let result = weights.withUnsafeBufferPointer { w in
                            labels.withUnsafeBufferPointer {
                                computation.backward(micro: m, labels: $0, scale: scale, weights: w.baseAddress!)
                            }
                        }
                        stats.computeSeconds += monotonicSeconds() - began
                        microLoss = result.loss
                        gradient = result.inputGradient
                    } else {
                        guard
                            let received = try awaitStage(
                                &mailbox, inbox, job: start.jobID, backward: true, micro: m,
                                shape: [rows, computation.outputWidth], stats: &stats)
                        else { return try endedWhileWaiting(start.jobID) }
                        microLoss = received.loss
                        let began = monotonicSeconds()
                        gradient = weights.withUnsafeBufferPointer {
                            computation.backward(micro: m, upstream: received.values, weights: $0.baseAddress!)
                        }
                        stats.computeSeconds += monotonicSeconds() - began
                    }
                    loss += microLoss
                    if let gradient, let below {
                        stats.bytesSent += try sendStage(
                            below, job: start.jobID, iteration: clock, micro: m, backward: true, loss: microLoss,
                            secret: pipeline.secret, stage: stage, values: gradient, rows: rows)
                    }
                }
            }
            var push = Chimera_V1_GradientPush()
            push.workerID = workerID
            push.session = session
            push.jobID = start.jobID
            push.clock = UInt64(clock)
            push.thenPull = true
            push.rows = UInt64(batch.rows)
            push.stageStats = stats
            var update = computation.gradient
            // Every stage knows the batch's loss (the last stage's shares came down with the gradients).
            push.loss = loss
            if !loss.isFinite || !update.allFinite {
                if loss.isFinite { push.loss = .infinity }
                update = [Float](repeating: 0, count: update.count)
            } else if owned {
                // The master's mean over the stages' losses gets each stage's share of the penalty once.
                let penalty = regularizer.apply(weights: weights, penalized: penalized, gradient: &update)
                push.loss = loss + Double(stages) * penalty
                if !optimizer.step(weights: &weights, gradient: update) { push.loss = .infinity }
            }
            var tensors = [NamedTensor("gradient", .float32(update, shape: shape))]
            if owned {
                // The slice goes to the master for checkpoints and for the model at the end.
                let done = clock + 1
                let every = configuration.checkpointEvery
                let send =
                    done >= configuration.maxIterations
                    || (every > 0 && (done % every == 0 || (done - Int(start.startClock)) % every == 0))
                tensors = send ? [NamedTensor("weights", .float32(weights, shape: shape))] : []
            }
            guard
                let answer = try roundCall(
                    timeout: pullTimeout,
                    write: { socket, requestID in
                        // The generic encoding: the round codec's fast form has no stage statistics.
                        try socket.send(
                            try WireCodec.encode(
                                WireMessage(.gradientPush(push), requestID: requestID, tensors: tensors)))
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

    /// A reply without weights (stages that own theirs): go on, stop, or the refusal.
    private func go(_ reply: RoundReply) throws -> Taken {
        switch reply {
        case .fast(let message): return message.body.done ? .done : .weights
        case .generic(let message):
            guard case .weights(let body) = message.body else { return .refused(message) }
            return body.done ? .done : .weights
        case .malformed(let error): throw error
        }
    }

    /// Sends one micro-batch's activations (forward) or gradient (backward) to a neighbour; returns
    /// the bytes sent.
    private func sendStage(
        _ socket: Socket, job: UInt64, iteration: Int, micro: Int, backward: Bool, loss: Double, secret: UInt64,
        stage: Int, values: [Float], rows: Int
    ) throws -> UInt64 {
        let header = Chimera_V1_StageMessage.with {
            $0.jobID = job
            $0.iteration = UInt64(iteration)
            $0.microBatch = UInt32(micro)
            $0.backward = backward
            $0.fromStage = UInt32(stage)
            $0.secret = secret
            $0.loss = loss
        }
        let tensor = Tensor.float32(values, shape: [rows, values.count / max(rows, 1)])
        let frames = try WireCodec.encode(
            WireMessage(.stageMessage(header), tensors: [NamedTensor(backward ? "gradient" : "activations", tensor)]))
        let bytes = frames.reduce(0) { $0 + $1.count }
        try socket.send(frames)
        return UInt64(bytes)
    }

    /// Waits for a neighbour's message for micro-batch `micro` of the mailbox's iteration, keeping
    /// the others that arrive meanwhile; nil when the job ended or the wait must be abandoned.
    private func awaitStage(
        _ mailbox: inout StageMailbox, _ inbox: Socket, job: UInt64, backward: Bool, micro: Int, shape: [Int],
        stats: inout Chimera_V1_StageStats
    ) throws -> StageMailbox.Delivery? {
        let began = monotonicSeconds()
        defer { stats.idleSeconds += monotonicSeconds() - began }
        let deadline = began + Double(options.pullTimeoutMilliseconds) / 1000
        while true {
            if let found = mailbox.take(backward: backward, micro: micro) {
                guard found.shape == shape else {
                    // A neighbour that disagrees about the batch is a bug or another peer: say so and stop.
                    throw ClusterError(
                        "stage message for micro-batch \(micro) is \(found.shape), expected \(shape): the stages disagree about the batch (different data?)"
                    )
                }
                return found
            }
            if isStopping || shouldAbandonWait || monotonicSeconds() > deadline { return nil }
            if try pollBroadcast(jobID: job) != nil { return nil }
            guard let frames = try inbox.receiveMultipart() else { continue }
            if let refusal = mailbox.accept(frames) {
                droppedStageMessages += 1
                logger.info("dropped a stage message: \(refusal)")
            }
        }
    }

    private func endedWhileWaiting(_ job: UInt64) throws -> JobEnd {
        if isStopping { return .stopped }
        if shouldAbandonWait { return abandonedWait(job: job) }
        logger.info("job \(job): stopped while waiting for a neighbouring stage")
        return .finished
    }
}

/// The stage messages of the current iteration that arrived before they were needed, checked
/// against the job, its secret and the iteration.
struct StageMailbox {
    struct Delivery {
        let values: [Float]
        let shape: [Int]
        let loss: Double
    }

    let job: UInt64
    let secret: UInt64
    let stage: Int
    private(set) var iteration = 0
    private var waiting: [Int: Delivery] = [:]
    /// Messages of the next iteration (a neighbour may start it while this stage still pushes).
    private var early: [[Frame]] = []

    init(job: UInt64, secret: UInt64, stage: Int) {
        self.job = job
        self.secret = secret
        self.stage = stage
    }

    private func key(backward: Bool, micro: Int) -> Int { micro * 2 + (backward ? 1 : 0) }

    mutating func begin(iteration: Int) {
        self.iteration = iteration
        waiting.removeAll()
        let held = early
        early = []
        for frames in held { _ = accept(frames) }
    }

    mutating func take(backward: Bool, micro: Int) -> Delivery? {
        waiting.removeValue(forKey: key(backward: backward, micro: micro))
    }

    /// Files a received message; returns why it was dropped, if it was.
    mutating func accept(_ frames: [Frame]) -> String? {
        let message: WireMessage
        do {
            message = try WireCodec.decode(frames)
        } catch {
            return "malformed: \(error)"
        }
        guard case .stageMessage(let header) = message.body else { return "not a stage message" }
        guard header.jobID == job, header.secret == secret else { return "another job's, or without its secret" }
        // Activations come from the stage below, gradients from the stage above.
        guard Int(header.fromStage) == (header.backward ? stage + 1 : stage - 1) else {
            return "from stage \(header.fromStage), not a neighbour of stage \(stage)"
        }
        if Int(header.iteration) == iteration + 1 {
            early.append(frames)
            return nil
        }
        guard Int(header.iteration) == iteration else { return "for iteration \(header.iteration), not \(iteration)" }
        let name = header.backward ? "gradient" : "activations"
        guard let tensor = try? message.tensor(named: name), tensor.dtype == .float32, tensor.shape.count == 2 else {
            return "no float32 tensor \"\(name)\" of two dimensions"
        }
        waiting[key(backward: header.backward, micro: Int(header.microBatch))] = Delivery(
            values: tensor.floats(), shape: tensor.shape, loss: header.loss)
        return nil
    }
}
