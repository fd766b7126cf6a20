import ChimeraML
import ChimeraWire
import Foundation
public import Logging
import SwiftProtobuf
import Synchronization
public import ZeroMQ

/// The master: one event loop owning one ROUTER (bound to the workers, control and in-process
/// endpoints) and the broadcast PUB. It moves messages between the sockets and the state machines that
/// decide: `Membership` (who is in the cluster), `JobLedger` (which job runs, tokens, cancels),
/// `ParameterServerState` (training rounds, SSP, divergence) and `FanOuts` (fan-out predictions).
/// Files by responsibility: +Registration, +Rounds, +Training, +Bagging, +BaggingPredict, +Predict,
/// +Requests, +Status, +Resume.
public final class ChimeraMaster {
    public struct Endpoints: Sendable {
        public let workers: String
        public let broadcast: String
        public let control: String
    }

    public let endpoints: Endpoints
    let options: MasterOptions
    /// swift-log, with `job`, `worker` and `iteration` metadata on the lines that concern one.
    let logger: Logger
    /// The ZeroMQ context of every master socket: in-process clients of `inprocControlEndpoint` use it.
    public let context: Context
    /// One ROUTER bound to both the workers and the control endpoints (and the in-process one): the
    /// loop then blocks in a single receive. Polling two sockets cost libzmq ~10 extra system calls
    /// per message (state checks before and after every `zmq_poll`), on the training round's path.
    let router: Socket
    let broadcastSocket: Socket
    let limits: WireLimits

    /// The ZAP handler admitting CURVE clients (kept alive as long as the master).
    let authenticator: CurveAuthenticator?
    /// Who is in the cluster (registration, sessions, liveness): decisions without I/O.
    var membership: Membership
    /// The parameter servers registered (`chimera server`), which sharded jobs hold their weights on.
    var servers = ServerRegistry()
    var job: Job?
    var lastJob: JobSummary?
    var model: FittedModel?
    /// Aggregation mode: the running bagging fit, the fitted ensemble, fan-out predictions in flight.
    var aggregation: AggregationJob?
    var ensemble: FittedEnsemble?
    /// The last predict request's column names and where the model's features are among them:
    /// clients send the same columns every time, and matching 21 names trimmed and lower-cased cost
    /// more than the prediction.
    var columnPlan: (columns: [String], featureNames: [String], positions: [Int])?
    /// Fan-out predictions waiting for the workers' answers (aggregation mode).
    var fanOuts: FanOuts<ClientAddress>
    var counters = MasterCounters()
    /// Which job runs, job ids and tokens, and the rules of starting and cancelling: decisions without I/O.
    var jobs: JobLedger
    /// The checkpoint of a job a previous master left mid-fit, resumed when its workers are back.
    var interrupted: FittedModel?
    /// The client of a synchronous fit whose job waits to resume (a parameter server was lost): it is
    /// answered when the resumed job ends, or when the resume is given up.
    var resumingClient: (peer: Frame, requestID: UInt64)?
    var resumeDeadline = 0.0
    var resumeReported = -1
    /// When this master started (the `--expect-workers` wait counts from it).
    let startedAt = monotonicSeconds()
    var warnedFewWorkers = false
    var syncSequence: UInt64 = 0
    var lastSync = 0.0
    /// The frames of the last message received, reused for the next one when nothing kept them.
    private var received: [Frame] = []
    /// Per-peer message rates and rate-limited rejection logs.
    var peerGuard: PeerGuard
    /// What the sender of the message being handled may do (its CURVE key's role; `.any` without CURVE).
    var peerRole = PeerRole.any
    /// The CURVE public key of the message's sender (empty without CURVE).
    var peerKey = ""
    /// Set it (from any thread, e.g. a signal handler) to make `run()` return.
    public let stopFlag = StopFlag()

    public init(options: MasterOptions, logger: Logger = Logger(label: "chimera.master")) throws {
        self.options = options
        self.logger = logger
        membership = Membership(
            settings: Membership.Settings(
                maxWorkers: options.maxWorkers,
                livenessSeconds: Double(options.heartbeatIntervalMilliseconds * options.heartbeatLiveness) / 1000))
        fanOuts = FanOuts(limit: options.maxFanOuts)
        jobs = JobLedger(mode: options.mode, tokenSecret: UInt64.random(in: 1...UInt64.max))
        limits = WireLimits(maxFrameBytes: options.maxFrameBytes)
        peerGuard = PeerGuard(maxMessagesPerSecond: options.maxPeerMessagesPerSecond)
        let context = try Context()
        self.context = context
        // The authenticator must be bound before the server sockets accept connections.
        if let curve = options.curve {
            authenticator = try CurveAuthenticator(context: context, roles: curve.roles)
        } else {
            authenticator = nil
        }
        router = try context.socket(.router)
        broadcastSocket = try context.socket(.pub)
        try router.setLinger(milliseconds: 0)
        // Bounded queues: a peer that sends without reading its replies, or faster than the loop
        // reads, is held back by TCP (receive side) or loses replies it never reads (send side),
        // instead of growing the master's memory. A REQ peer never has more than one reply queued.
        try router.setReceiveHighWaterMark(10_000)
        try router.setSendHighWaterMark(100)
        try router.setMaxMessageSize(bytes: Int64(options.maxFrameBytes) + 4096)
        if let curve = options.curve {
            for socket in [router, broadcastSocket] {
                try socket.setCurveServer(secretKey: curve.keyPair.secretKey)
            }
        }
        try broadcastSocket.setLinger(milliseconds: 1_000)
        try broadcastSocket.setSendHighWaterMark(100_000)
        let requested = options.endpoints
        endpoints = Endpoints(
            workers: try router.bind(requested.workers),
            broadcast: try broadcastSocket.bind(requested.broadcast),
            control: try router.bind(requested.control))
        if let inproc = options.inprocControlEndpoint { _ = try router.bind(inproc) }
        if options.resume, options.mode == .aggregation, let directory = options.modelDirectory {
            let url = directory.appendingPathComponent("ensemble.json")
            if FileManager.default.fileExists(atPath: url.path) {
                let loaded = try FittedEnsemble.load(from: url)
                ensemble = loaded
                logger.info("resumed ensemble.json (\(loaded.ensemble.trees.count) trees)")
            }
        } else if options.resume, let directory = options.modelDirectory {
            for file in ["checkpoint.json", "model.json"] {
                let url = directory.appendingPathComponent(file)
                guard FileManager.default.fileExists(atPath: url.path) else { continue }
                do {
                    let loaded = try FittedModel.load(from: url)
                    model = loaded
                    logger.info("resumed \(file) (\(loaded.model.rawValue), \(loaded.iterations) iterations)")
                    planResume(loaded)
                    break
                } catch {
                    logger.error("cannot resume from \(file): \(error)")
                }
            }
        }
    }

    /// Asks `run()` to return (from any thread).
    public func stop() { stopFlag.stop() }

    /// Runs the event loop until `stop()`. Blocks the calling thread.
    public func run() throws {
        var lastLivenessCheck = 0.0
        var needSync = false
        var lastSyncCheck = -1.0
        var timeout: Int32 = 0
        while !stopFlag.isStopped {
            // One message per blocking receive: with a message queued it returns without a system
            // call, and an empty queue costs one wait (a non-blocking read that finds nothing costs two).
            let wanted: Int32 = needSync ? 20 : 100
            if wanted != timeout {
                try router.setReceiveTimeout(milliseconds: wanted)
                timeout = wanted
            }
            if try router.receiveMultipart(into: &received) {
                let began = monotonicSeconds()
                try handleReceived()
                try flushReplicaEvents()
                // A long stall of the master's own (under load, saving a 300 k-weight model took most of
                // a liveness window) must not declare the workers whose heartbeats queued meanwhile dead.
                let spent = monotonicSeconds() - began
                if spent > 0.05 { membership.excuse(seconds: spent) }
            }
            let now = monotonicSeconds()
            // Whether a worker still has to confirm its subscription: looked at every few ms, not on
            // every message of a training round.
            if needSync || now - lastSyncCheck >= 0.005 {
                needSync = membership.awaitingSubscription
                lastSyncCheck = now
            }
            if needSync && now - lastSync >= 0.02 { try publishSync(now) }
            if now - lastLivenessCheck >= 0.1 {
                lastLivenessCheck = now
                try checkLiveness(now)
                try checkServers(now)
                try flushReplicaEvents()
                try answerFinishedFanOuts(now: now)
                try resumeIfReady(now)
            }
        }
    }

    /// Handles the message in `received`: a worker's or a client's, told apart by its body.
    private func handleReceived() throws {
        let frames = received
        counters.bytesReceived += frames.reduce(0) { $0 + $1.count }
        let peer: Frame
        let payload: ArraySlice<Frame>
        do {
            (peer, payload) = try WireCodec.splitRoutingEnvelope(frames)
        } catch {
            counters.reject(error.code.metricLabel)
            logRejection("no_envelope", "dropped a message without a routing envelope")
            return
        }
        guard peerGuard.admit(peer, now: monotonicSeconds()) else {
            // A flood is dropped unanswered: answering it would cost what it is meant to cost.
            counters.reject("rate_limited")
            logRejection(
                "rate_limited",
                "a peer sent more than \(options.maxPeerMessagesPerSecond) messages in a second: dropped")
            return
        }
        if options.curve != nil {
            let userID = frames.last?.metadata("User-Id")
            peerRole = PeerRole(userID: userID)
            peerKey = userID?.split(separator: ":", maxSplits: 1).last.map(String.init) ?? ""
        }
        // A training round's push takes the hand-written codec; anything else the generic one.
        if let push = RoundCodec.decodePush(payload) { return try handleRoundPush(peer, push) }
        let message: WireMessage
        do {
            message = try WireCodec.decode(payload, limits: limits)
        } catch {
            counters.reject(error.code.metricLabel)
            logRejection(error.code.metricLabel, "rejected a message: \(error)")
            return try reply(to: peer, .error(error.replyCode, error.description))
        }
        if message.body?.isControlRequest == true {
            try handleControlMessage(peer, message)
        } else if message.body?.isServerMessage == true {
            try handleServerMessage(peer, message)
        } else {
            try handleWorkerMessage(peer, message)
        }
    }

    /// Logs a rejection, at most one line per kind a second (all are counted in `counters`).
    func logRejection(_ kind: String, _ text: @autoclosure () -> String) {
        // text() runs only when logged
        if let line = peerGuard.logLine(kind, text(), now: monotonicSeconds()) {
            logger.notice("\(line)", metadata: ["kind": "\(kind)"])
        }
    }

    /// The token of job `id`: given to the client that started it, needed to cancel it.
    func jobToken(_ id: UInt64) -> UInt64 { jobs.token(of: id) }

    // MARK: Sending

    /// Answers a worker or a client (both reach the one ROUTER).
    func reply(to peer: Frame, _ message: WireMessage) throws {
        let frames = try WireCodec.encode(message)
        counters.bytesSent += frames.reduce(0) { $0 + $1.count }
        do {
            try sendEnvelope(to: peer)
            try router.send(frames)
        } catch {
            guard error.code == .hostUnreachable else { throw error }
            logger.info("peer disconnected before its reply")
        }
    }

    /// A round's `Weights` reply, written straight from `weights` (no frame objects).
    func sendWeights(
        to peer: Frame, _ header: Chimera_V1_Weights, requestID: UInt64, weights: UnsafeBufferPointer<Float>,
        outputs: Int,
        stride: Int
    ) throws {
        do {
            try sendEnvelope(to: peer)
            let sent = try RoundCodec.send(
                header, requestID: requestID, weights: weights, outputs: outputs, stride: stride, on: router)
            counters.bytesSent += sent + peer.count
        } catch let error as ZMQError where error.code == .hostUnreachable {
            logger.info("peer disconnected before its reply")
        }
    }

    /// The routing envelope (a copy of the peer's identity: the stored frame may answer again later,
    /// as parked pulls do) and the empty delimiter a REQ peer expects.
    private func sendEnvelope(to peer: Frame) throws(ZMQError) {
        try peer.withUnsafeBytes { (identity) throws(ZMQError) in try router.send(copying: identity, more: true) }
        try router.send(copying: UnsafeRawBufferPointer(start: nil, count: 0), more: true)
    }

    func publish(_ message: WireMessage) throws {
        let frames = try WireCodec.encode(message)
        counters.bytesSent += frames.reduce(0) { $0 + $1.count }
        try broadcastSocket.send(frames)
    }

    private func publishSync(_ now: Double) throws {
        syncSequence += 1
        lastSync = now
        try publish(WireMessage(.sync(Chimera_V1_Sync.with { $0.sequence = syncSequence })))
    }

    // MARK: Liveness

    private func checkLiveness(_ now: Double) throws {
        membership.prune(now: now)
        for id in membership.silent(now: now) {
            guard let record = membership[id] else { continue }
            logger.warning(
                "\(record.name) (worker \(id)) missed \(options.heartbeatLiveness) heartbeats: declared dead",
                metadata: ["worker": "\(record.name)"])
            try markDead(id, reason: "missed \(options.heartbeatLiveness) heartbeats")
        }
    }

    func markDead(_ id: UInt32, reason: String = "left the cluster") throws {
        guard let record = membership.markDead(id, inJob: job?.state.clock(of: id) != nil) else { return }
        try aggregationWorkerLost(id, reason: reason)
        if let stage = job?.pipeline?.assignments[id], job?.state.clock(of: id) != nil {
            // A pipeline cannot go on without one of its stages: its neighbours would wait for ever.
            record.lastClock = job?.state.clock(of: id) ?? 0
            job?.failedWorkers.insert(record.name)
            logger.warning(
                "job \(job!.id): stage \(stage.stage) of replica \(stage.replica) (\(record.name)) \(reason)")
            return try finishJob(
                state: .failed,
                error:
                    "stage \(stage.stage) of replica \(stage.replica) (\(record.name), layers \(stage.firstLayer)..<\(stage.endLayer)) \(reason) at iteration \(job!.state.completedIterations): a pipeline cannot go on without a stage; fit again once it is back (the model so far is in checkpoint.json when checkpoint_every is set)",
                code: .noWorkers)
        }
        if let columns = job?.features?.blocks[id], job?.state.clock(of: id) != nil {
            record.lastClock = job?.state.clock(of: id) ?? 0
            job?.failedWorkers.insert(record.name)
            return try finishJob(
                state: .failed,
                error:
                    "the feature block of columns \(columns.lowerBound)..<\(columns.upperBound) (\(record.name)) \(reason) at iteration \(job!.state.completedIterations): a feature-partitioned fit cannot go on without a block; fit again once it is back",
                code: .noWorkers)
        }
        if var current = job, let clock = current.state.clock(of: id) {
            record.lastClock = clock
            let replies = current.state.leave(id)
            current.failedWorkers.insert(record.name)
            job = current
            try deliver(replies)
            try checkJobProgress()
        }
    }
}
