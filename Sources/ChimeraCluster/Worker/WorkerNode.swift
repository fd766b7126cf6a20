public import ChimeraML
import ChimeraWire
public import Logging
import Foundation
import SwiftProtobuf
import Synchronization
import ZeroMQ

/// A worker process: holds one shard, registers with the master, and computes updates for jobs.
///
/// Requests go over a REQ socket with a timeout; a timed-out socket is closed and replaced (lazy
/// pirate), never reused. Heartbeats go from their own thread and socket, so a long computation or a
/// request parked at the SSP barrier does not make the worker look dead.
public final class WorkerNode {
    public struct Options: Sendable {
        public var masterEndpoint = "tcp://127.0.0.1:5555"
        public var name: String
        /// How long to wait for any reply before replacing the socket and retrying.
        public var requestTimeoutMilliseconds: Int32 = 10_000
        /// Requests parked at the barrier may wait longer than any compute; this bounds them.
        public var pullTimeoutMilliseconds: Int32 = 600_000
        /// Simulated compute: extra time spent on every iteration, in milliseconds.
        public var delayPerIterationMilliseconds = 0
        public var straggler = Straggler()
        /// CURVE keys when the master requires them.
        public var curve: CurveClientSettings?
        /// Threads sharing a full-batch gradient pass (more than one pays off when this worker has spare
        /// cores: `chimera local` gives each worker cores ÷ workers).
        public var computeThreads = 1

        public init(name: String) { self.name = name }
    }

    let options: Options
    let data: Dataset
    /// Seeds bootstraps and mini-batches: the same shard and fit seed give the same model whatever the
    /// worker is called or however the cluster was started.
    let shardDigest: UInt64
    /// swift-log, with this worker's name as `worker` metadata (and `job`, `iteration` where they apply).
    let logger: Logger
    let context: Context
    private let requests: RequestChannel
    /// Set it (from any thread, e.g. a signal handler) to make `run()` return.
    public let stopFlag = StopFlag()
    private var workerID: UInt32 = 0
    private var broadcast: Socket?
    private var broadcastEndpoint = ""
    private var heartbeat: HeartbeatSender?
    /// Aggregation: the trees this worker fitted last, kept for fan-out predictions.
    private var members: TreeEnsemble?
    /// The shard's histogram bins, computed at the first bagging fit and kept: the shard never changes.
    private var bins: FeatureBins?
    private var scheduling = ComputeScheduling()
    /// The shard packed for the blocked kernel, kept between jobs with the same standardisation (the
    /// shard never changes; packing 200k × 21 rows takes ~5–10 ms of every fit otherwise).
    private var packed: (standardizer: Standardizer?, labelNames: [String], rows: BlockedRows)?

    public init(options: Options, data: Dataset, logger: Logger = Logger(label: "chimera.worker")) throws {
        self.options = options
        self.data = data
        shardDigest = data.contentDigest
        var logger = logger
        logger[metadataKey: "worker"] = "\(options.name)"
        self.logger = logger
        context = try Context()
        requests = RequestChannel(context: context, endpoint: options.masterEndpoint, curve: options.curve)
    }

    public func stop() { stopFlag.stop() }
    private var isStopping: Bool { stopFlag.isStopped }

    /// Registers and serves jobs until the master says shutdown or `stop()` is called.
    public func run() throws {
        defer {
            heartbeat?.stop()
            sayGoodbye()
        }
        var pendingJob = try register()
        while !isStopping {
            if let job = pendingJob {
                pendingJob = nil
                let end: JobEnd
                do {
                    end = try runJob(job.start, standardizer: job.standardizer)
                } catch let error as ZMQError {
                    throw error
                } catch {
                    // A job this worker cannot run (bad settings, a bad message from the master) ends
                    // here, not the process: the worker stays registered for the next fit.
                    logger.info("job \(job.start.jobID) stopped: \(error)")
                    end = .stopped
                }
                switch end {
                case .finished, .stopped: continue
                case .reRegister: pendingJob = try register()
                case .shutdown: return
                }
                continue
            }
            if heartbeat?.masterForgotUs == true {
                logger.info("the master does not know this worker (restarted, or it declared us dead); registering again")
                pendingJob = try register()
                continue
            }
            guard let sub = broadcast, let frames = try sub.receiveMultipart() else { continue }
            let message: WireMessage
            do {
                message = try WireCodec.decode(frames)
            } catch {
                logger.info("ignored a malformed broadcast: \(error)")
                continue
            }
            switch message.body {
            case .sync(let sync):
                if let job = try confirmSubscription(sync.sequence) { pendingJob = job }
            case .jobStart(let start) where start.kind == .parameterServer:
                pendingJob = (start, try standardizer(from: message))
            case .jobStart(let start) where start.kind == .aggregation:
                try fitMembers(start)
            case .memberPredict(let task):
                try answerMemberPredict(task, message)
            case .shutdown(let shutdown):
                logger.info("master shut down (\(shutdown.reason))")
                return
            default:
                continue
            }
        }
    }

    // MARK: Registration

    private var subscribed = false
    /// The Welcome's session secret, carried by every later message.
    private var session: UInt64 = 0

    /// Says hello until welcomed; connects the broadcast socket and starts heartbeats. Returns the job
    /// to join when one is running.
    private func register() throws -> (start: Chimera_V1_JobStart, standardizer: Standardizer?)? {
        heartbeat?.stop()
        heartbeat = nil
        var hello = Chimera_V1_WorkerHello()
        hello.name = options.name
        hello.rows = UInt64(data.rows)
        hello.featureNames = data.featureNames
        if data.labelNames.isEmpty {
            hello.labelValues = data.distinctLabels.map(Double.init)
        } else {
            hello.labelNames = data.labelNames
        }
        hello.software = "chimera-swift 0.1.0"
        hello.pid = UInt32(ProcessInfo.processInfo.processIdentifier)
        hello.host = ProcessInfo.processInfo.hostName
        let moments = ColumnMoments(data)
        let tensors = [
            NamedTensor("column_sum", .float64(moments.sum)),
            NamedTensor("column_sum_of_squares", .float64(moments.sumOfSquares)),
        ]
        var attempt = 0
        while !isStopping {
            attempt += 1
            // Short: a restarted master gets the next hello within about this long.
            let helloTimeout = min(options.requestTimeoutMilliseconds, 2_000)
            guard let reply = try call(WireMessage(.hello(hello), tensors: tensors), timeout: helloTimeout) else {
                if attempt == 1 || attempt % 6 == 0 { logger.info("waiting for the master at \(options.masterEndpoint)") }
                continue
            }
            switch reply.body {
            case .welcome(let welcome):
                workerID = welcome.workerID
                session = welcome.session
                try connectBroadcast(welcome.broadcastEndpoint)
                // A new registration starts unconfirmed on the master: confirm the next Sync again.
                subscribed = false
                heartbeat = try HeartbeatSender(
                    context: context, endpoint: options.masterEndpoint, curve: options.curve, workerID: workerID,
                    session: session, intervalMilliseconds: Int(max(welcome.heartbeatIntervalMs, 50)),
                    liveness: Int(max(welcome.heartbeatLiveness, 1)))
                logger.info("registered as worker \(workerID) (\(data.rows) rows, \(data.columns) features)")
                if welcome.hasCurrentJob {
                    return (welcome.currentJob, try standardizer(from: reply))
                }
                return nil
            case .error(let error) where error.code == .nameInUse:
                // Another process holds the name; it may be this worker's own crashed predecessor,
                // which the master declares dead after the heartbeat timeout. Wait, and say why.
                if attempt == 1 || attempt % 10 == 0 { logger.info("\(error.message)") }
                usleep(500_000)
            case .error(let error):
                throw ClusterError("\(options.name): the master refused us: \(error.message)")
            default:
                throw ClusterError("\(options.name): unexpected reply to hello: \(reply.body?.kindName ?? "?")")
            }
        }
        return nil
    }

    private func connectBroadcast(_ advertised: String) throws {
        let endpoint = reachableEndpoint(advertised: advertised, masterEndpoint: options.masterEndpoint)
        // The same endpoint: the SUB socket reconnects by itself (also to a restarted master). A
        // restarted master may publish elsewhere: then a new socket.
        if broadcast != nil, endpoint == broadcastEndpoint { return }
        broadcast?.close()
        broadcast = nil
        let sub = try context.socket(.sub)
        try sub.setLinger(milliseconds: 0)
        try sub.setReceiveHighWaterMark(0)
        try sub.setReceiveTimeout(milliseconds: 100)
        try sub.subscribe()
        try options.curve?.apply(to: sub)
        try sub.connect(endpoint)
        broadcast = sub
        broadcastEndpoint = endpoint
        subscribed = false
    }

    /// Completes the slow-joiner handshake. The master answers with the running job's JobStart when this
    /// worker should join it (it registered too late to see the broadcast).
    private func confirmSubscription(_ sequence: UInt64) throws -> (start: Chimera_V1_JobStart, standardizer: Standardizer?)? {
        guard !subscribed else { return nil }
        let ready = Chimera_V1_SubscriptionReady.with {
            $0.workerID = workerID
            $0.session = session
            $0.syncSequence = sequence
        }
        guard let reply = try call(WireMessage(.subscriptionReady(ready)), timeout: options.requestTimeoutMilliseconds) else {
            return nil
        }
        switch reply.body {
        case .ack:
            subscribed = true
        case .jobStart(let start):
            subscribed = true
            return (start, try standardizer(from: reply))
        default:
            break
        }
        return nil
    }

    private func standardizer(from message: WireMessage) throws -> Standardizer? {
        guard let mean = try? message.tensor(named: "mean"), let scale = try? message.tensor(named: "scale") else { return nil }
        return Standardizer(mean: mean.floats(), scale: scale.floats())
    }

    // MARK: Jobs

    enum JobEnd { case finished, stopped, reRegister, shutdown }

    private func runJob(_ start: Chimera_V1_JobStart, standardizer: Standardizer?) throws -> JobEnd {
        let configuration = try TrainingConfiguration(wire: start.config)
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
        let objective = Objective(kind: configuration.model, features: features.count, classes: classes)
        // Full-batch passes of single-output models run on the blocked SIMD layout (standardised while
        // packing); mini-batches, local SGD and softmax use the row-major shard.
        let fullBatch = configuration.batchSize <= 0 || configuration.batchSize >= data.rows
        let blocked =
            objective.outputs == 1 && fullBatch && configuration.workerMode != .localSGD
            ? blockedShard(data, standardizer: standardizer) : nil
        let shard = blocked != nil ? data : (standardizer?.apply(to: data) ?? data)
        var random = SplitMix64(seed: configuration.seed ^ shardDigest)
        var gradient = [Float](repeating: 0, count: objective.weightCount)
        let localSGD = LocalSGD(objective: objective, configuration: configuration)
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
                let reply: RoundReply
                if let carried = next {
                    reply = carried
                    next = nil
                } else {
                    let pull = Chimera_V1_WeightPull.with {
                        $0.workerID = workerID
                        $0.session = session
                        $0.jobID = start.jobID
                        $0.clock = UInt64(clock)
                    }
                    guard let answer = try roundCall(timeout: pullTimeout, write: { socket, requestID in
                        try socket.send(try WireCodec.encode(WireMessage(.weightPull(pull), requestID: requestID)))
                    }) else {
                        return abandonedWait(job: start.jobID)
                    }
                    reply = answer
                }
                let taken: Taken
                do {
                    taken = try take(reply, into: &weights, shape: shape)
                } catch let error as WireError {
                    // Weights this worker cannot use: it says so with a non-finite loss (the master
                    // ends or backs off the fit) instead of leaving the job or the process.
                    logger.info("job \(start.jobID): unusable weights from the master (\(error.message)); reporting")
                    taken = .unusable
                }
                switch taken {
                case .weights: break
                case .unusable: unusable = true
                case .done:
                    let summary = String(
                        format: "job %llu done: %d iterations here, compute %.3f s, messaging and barrier %.3f s", start.jobID,
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
            } else if configuration.workerMode == .localSGD {
                let (step, loss) = localSGD.delta(weights: weights, data: shard, iteration: clock, random: &random)
                push.loss = loss
                push.isDelta = true
                push.rows = UInt64(shard.rows)
                delta = step
            } else if let blocked {
                push.loss = objective.lossAndGradient(
                    weights: weights, rows: blocked, threads: computeThreads, gradient: &gradient)
                push.rows = UInt64(blocked.rows)
            } else {
                let batch = minibatch(shard, size: configuration.batchSize, random: &random)
                push.loss = objective.lossAndGradient(weights: weights, data: batch, gradient: &gradient)
                push.rows = UInt64(batch.rows)
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
            if unusable || !push.loss.isFinite || update.contains(where: { !$0.isFinite }) {
                if push.loss.isFinite { push.loss = .infinity }
                update = [Float](repeating: 0, count: objective.weightCount)
            }
            unusable = false
            // The reply is the next iteration's weights (possibly parked at the barrier), or an error.
            guard let answer = try roundCall(timeout: pullTimeout, write: { socket, requestID in
                _ = try update.withUnsafeBufferPointer {
                    try RoundCodec.send(
                        push, requestID: requestID, update: $0, outputs: objective.outputs, stride: objective.stride, on: socket)
                }
            })
            else { return abandonedWait(job: start.jobID) }
            switch answer {
            case .fast, .malformed: next = answer
            case .generic(let message):
                switch message.body {
                case .weights: next = answer
                case .ack: break
                default: return try handleRefusal(message)
                }
            }
            clock += 1
            heartbeat?.update(jobID: start.jobID, clock: UInt64(clock))
        }
        return .stopped
    }

    /// A reply in a training round: weights read by the round codec, or any message the generic way.
    private enum RoundReply {
        case fast(RoundCodec.Message<Chimera_V1_Weights>)
        case generic(WireMessage)
        /// A reply this worker could not decode (e.g. a non-finite weight).
        case malformed(WireError)
    }

    /// Sends a round request (pull or push; `write` sends its frames) and reads the reply; nil when
    /// none came in time.
    private func roundCall(timeout: Int32, write: (Socket, UInt64) throws -> Void) throws -> RoundReply? {
        guard let frames = try requests.request(timeoutMilliseconds: timeout, abandon: { self.shouldAbandonWait }, write: write)
        else { return nil }
        if let weights = RoundCodec.decodeWeights(frames[...]) { return .fast(weights) }
        do {
            return .generic(try WireCodec.decode(frames))
        } catch {
            return .malformed(error)
        }
    }

    private enum Taken {
        case weights
        case done
        case refused(WireMessage)
        case unusable
    }

    /// Copies a round reply's weights into `weights`; or says the job is done, or the reply refused.
    private func take(_ reply: RoundReply, into weights: inout [Float], shape: [Int]) throws -> Taken {
        let header: Chimera_V1_Weights
        let received: Tensor?  // a `done` reply may come without weights
        switch reply {
        case .fast(let message):
            header = message.body
            received = message.tensor
        case .generic(let message):
            guard case .weights(let body) = message.body else { return .refused(message) }
            header = body
            received = body.done ? nil : try message.tensor(named: "weights", dtype: .float32, shape: shape)
        case .malformed(let error):
            throw error
        }
        if header.done { return .done }
        guard let received, received.shape == shape else {
            let found = received.map { "\($0.dtype) \($0.shape)" } ?? "missing"
            throw WireError(.wrongTensor, "tensor \"weights\" is \(found), expected float32 \(shape)")
        }
        weights.withUnsafeMutableBytes { out in received.withUnsafeBytes { out.copyMemory(from: $0) } }
        return .weights
    }

    private func blockedShard(_ data: Dataset, standardizer: Standardizer?) -> BlockedRows {
        if let packed, packed.standardizer == standardizer, packed.labelNames == data.labelNames { return packed.rows }
        let rows = BlockedRows(data, standardizer: standardizer)
        packed = (standardizer, data.labelNames, rows)
        return rows
    }

    /// The shard with its labels as the job numbers them: class names become indices into the job's
    /// class names (the union of every worker's).
    private func labelled(for start: Chimera_V1_JobStart) throws -> Dataset {
        if start.classNames.isEmpty {
            guard data.labelNames.isEmpty else { throw ClusterError("this shard's labels are class names, the job's numbers") }
            return data
        }
        guard let relabelled = data.relabelled(into: start.classNames) else {
            throw ClusterError(
                data.labelNames.isEmpty
                    ? "this shard's labels are numbers, the job's class names"
                    : "this shard has classes the job does not know (\(Set(data.labelNames).subtracting(start.classNames).sorted()))")
        }
        return relabelled
    }

    // MARK: Aggregation

    /// Fits this worker's bagged trees and sends them to the master (failures are reported, not thrown).
    private func fitMembers(_ start: Chimera_V1_JobStart) throws {
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
            if bins?.maxBins != configuration.tree.maxBins { bins = FeatureBins(data, maxBins: configuration.tree.maxBins) }
            let trees = try Bagging.fit(
                data: data, classes: classes, settings: configuration.tree, trees: configuration.treesPerWorker,
                workerSeed: shardDigest, bootstrap: configuration.bootstrap, bins: bins)
            let delay = options.delayPerIterationMilliseconds * trees.count
            if delay > 0 { usleep(UInt32(min(delay, 3_600_000)) * 1000) }
            tensors = trees.enumerated().map { NamedTensor("tree.\($0.offset)", .bytes(TreeCodec.encode($0.element))) }
            members = TreeEnsemble(task: configuration.task, featureNames: data.featureNames, classes: classes, trees: trees)
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
        guard let reply = try call(WireMessage(.workerResult(result), tensors: tensors), timeout: options.requestTimeoutMilliseconds)
        else {
            logger.info("the master did not acknowledge the trees of job \(start.jobID)")
            return
        }
        if case .error(let error) = reply.body { logger.info("the master refused the trees: \(error.message)") }
    }

    /// Fan-out prediction: the mean of this worker's members on the broadcast rows.
    private func answerMemberPredict(_ task: Chimera_V1_MemberPredict, _ message: WireMessage) throws {
        var answer = Chimera_V1_MemberPrediction()
        answer.workerID = workerID
        answer.session = session
        answer.taskID = task.taskID
        var tensors: [NamedTensor] = []
        if let members, !members.trees.isEmpty {
            do throws(WireError) {
                let x = try message.tensor(named: "x")
                guard x.dtype == .float32, x.shape.count == 2, x.shape[1] == members.featureNames.count else {
                    throw WireError(.wrongTensor, "x must be float32 [rows, \(members.featureNames.count)], is \(x.dtype) \(x.shape)")
                }
                let rows = Dataset(
                    featureNames: members.featureNames, features: x.floats(), labels: [Float](repeating: 0, count: x.shape[0]))
                tensors = [NamedTensor("means", .float32(members.meanOutputs(rows), shape: [x.shape[0], members.outputs]))]
                answer.members = UInt32(members.trees.count)
            } catch {
                answer.failed = true
                answer.error = error.message
            }
        } else {
            answer.failed = true
            answer.error = "no fitted members"
        }
        _ = try call(WireMessage(.memberPrediction(answer), tensors: tensors), timeout: options.requestTimeoutMilliseconds)
    }

    /// An Error reply during a job: re-register when the master forgot us, otherwise stop this job.
    private func handleRefusal(_ reply: WireMessage) throws -> JobEnd {
        guard case .error(let error) = reply.body else { return .stopped }
        logger.info("master refused: \(error.message)")
        return error.code == .unknownWorker || error.code == .stale ? .reRegister : .stopped
    }

    /// Reads pending broadcasts between iterations: JobStop ends the job, Shutdown the process.
    private func pollBroadcast(jobID: UInt64) throws -> JobEnd? {
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

    // MARK: Requests

    /// Sends a request and waits for its reply; on timeout (or when the wait is abandoned) the socket
    /// is replaced and nil returned.
    private func call(_ message: WireMessage, timeout: Int32) throws -> WireMessage? {
        try requests.request(message, timeoutMilliseconds: timeout, abandon: { self.shouldAbandonWait })
    }

    /// Why a wait for the master should end early: stopping, a master that no longer knows this
    /// worker (restarted), or one silent for its liveness (dead). Looked at every 100 ms of a wait.
    private var shouldAbandonWait: Bool {
        isStopping || heartbeat?.masterForgotUs == true || heartbeat?.masterSilent == true
    }

    /// What a job does after a wait for the master ended without a reply.
    private func abandonedWait(job: UInt64) -> JobEnd {
        if isStopping { return .stopped }
        if heartbeat?.masterSilent == true {
            logger.info("job \(job): the master stopped answering; registering again")
        } else if heartbeat?.masterForgotUs == true {
            logger.info("job \(job): the master does not know this worker (restarted?); registering again")
        } else {
            logger.info("job \(job): no reply from the master; registering again")
        }
        return .reRegister
    }

    /// Tells the master this worker leaves (best effort, briefly): it need not wait for missed heartbeats.
    private func sayGoodbye() {
        guard workerID != 0, session != 0 else { return }
        let goodbye = Chimera_V1_WorkerGoodbye.with {
            $0.workerID = workerID
            $0.session = session
            $0.reason = isStopping ? "stopped" : "exiting"
        }
        _ = try? requests.request(WireMessage(.goodbye(goodbye)), timeoutMilliseconds: 300)
    }
}

/// The master advertises the endpoint it bound; bound to a wildcard (0.0.0.0, *, ::) that is not an
/// address to connect to, so the host we reached the master at is used instead.
func reachableEndpoint(advertised: String, masterEndpoint: String) -> String {
    guard let colon = advertised.lastIndex(of: ":"), advertised.hasPrefix("tcp://") else { return advertised }
    let host = advertised[advertised.index(advertised.startIndex, offsetBy: 6)..<colon]
    guard ["0.0.0.0", "*", "[::]", "::", "[*]"].contains(host), masterEndpoint.hasPrefix("tcp://"),
        let masterColon = masterEndpoint.lastIndex(of: ":")
    else { return advertised }
    let masterHost = masterEndpoint[masterEndpoint.index(masterEndpoint.startIndex, offsetBy: 6)..<masterColon]
    return "tcp://\(masterHost)\(advertised[colon...])"
}

public struct ClusterError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension String {
    /// A hash that is the same in every process (Swift's `hashValue` is seeded per process).
    var hashValueStable: UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return hash
    }
}
