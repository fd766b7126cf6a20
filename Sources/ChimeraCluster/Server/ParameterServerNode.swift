public import ChimeraML
import ChimeraWire
import Foundation
public import Logging
import SwiftProtobuf
import ZeroMQ

/// A parameter server (`chimera server`): holds one key range of a sharded job's weights. It reads
/// the job's events from the master (a long poll on its own DEALER), replays them on its replica of
/// the master's state machine — which steps the range exactly as the master would have — and serves
/// the workers' pushes and pulls of the range on its ROUTER (proto/README.md, "Parameter servers").
public final class ParameterServerNode {
    public struct Options: Sendable {
        public var name: String
        public var masterEndpoint = "tcp://127.0.0.1:5555"
        /// Where workers reach it: a host or address to bind (port `port`, 0: chosen by the OS).
        public var host = "127.0.0.1"
        public var port = 0
        /// The endpoint given to workers when the bound one is a wildcard (0.0.0.0).
        public var advertiseHost: String?
        /// CURVE: our key pair and the master's public key (to the master), and the workers' keys we
        /// admit (our ROUTER then requires CURVE).
        public var curve: CurveClientSettings?
        public var admittedWorkerKeys: Set<String> = []
        public var maxFrameBytes = 1 << 30

        public init(name: String) { self.name = name }
    }

    /// A job's range as this server holds it.
    struct Replica {
        let jobID: UInt64
        let range: Range<Int>
        var state: ParameterServerState
        /// Events replayed so far.
        var replayed = 0
        /// Each joined worker's session: a push or pull must carry it.
        var sessions: [UInt32: UInt64] = [:]
        /// Each worker's last pushed range, until the master's push event for it is replayed.
        var pushes: [UInt32: (clock: UInt64, values: [Float])] = [:]
    }

    let options: Options
    let logger: Logger
    let context: Context
    let router: Socket
    let authenticator: CurveAuthenticator?
    public let endpoint: String
    public let stopFlag = StopFlag()
    private var master: Socket?
    private var serverID: UInt32 = 0
    private var session: UInt64 = 0
    private var pollInterval = 1.0
    private var liveness = 3.0
    /// The poll in flight (sent at), and when the master last answered anything.
    private var pollSent: Double?
    private var lastHeard = 0.0
    private var nextRequestID: UInt64 = 1
    private var replica: Replica?
    /// Pulls waiting for events: (worker's routing id, request id, job, events needed).
    private var parked: [ParkedPull] = []
    /// Refused messages by kind (every bad input is counted; logged at most once a second per kind).
    public private(set) var rejected: [String: Int] = [:]
    private var rejectionLogged: [String: Double] = [:]

    struct ParkedPull {
        let peer: Frame
        let requestID: UInt64
        let jobID: UInt64
        let workerID: UInt32
        let session: UInt64
        let after: Int
    }

    /// Pulls waiting for events at once: a worker has one at a time, so more is a flood.
    public static let maxParkedPulls = 1_024
    private var received: [Frame] = []
    private let limits: WireLimits
    /// Why the master will never take this server (its key's role): `run` ends with it.
    private var refused: String?

    public init(options: Options, logger: Logger = Logger(label: "chimera.server")) throws {
        self.options = options
        var logger = logger
        logger[metadataKey: "server"] = "\(options.name)"
        self.logger = logger
        limits = WireLimits(maxFrameBytes: options.maxFrameBytes)
        context = try Context()
        if options.curve != nil {
            authenticator = try CurveAuthenticator(
                context: context,
                roles: Dictionary(uniqueKeysWithValues: options.admittedWorkerKeys.map { ($0, "worker") }))
        } else {
            authenticator = nil
        }
        router = try context.socket(.router)
        try router.setLinger(milliseconds: 0)
        try router.setMaxMessageSize(bytes: Int64(options.maxFrameBytes) + 4096)
        if let curve = options.curve { try router.setCurveServer(secretKey: curve.keyPair.secretKey) }
        let bound = try router.bind("tcp://\(options.host):\(options.port)")
        if let advertise = options.advertiseHost, let colon = bound.lastIndex(of: ":") {
            endpoint = "tcp://\(advertise)\(bound[colon...])"
        } else {
            endpoint = bound
        }
    }

    public func stop() { stopFlag.stop() }

    /// Serves until `stop()`.
    public func run() throws {
        logger.info("parameter server \(options.name) listening on \(endpoint)")
        while !stopFlag.isStopped {
            if master == nil { try connect() }
            var poller = Poller()
            try poller.add(router)
            if let master { try poller.add(master) }
            let ready = try poller.poll(timeoutMilliseconds: 100)
            if ready[0].contains(.readable) {
                // Drain what is there: a round's pushes come together.
                while try router.receiveMultipart(into: &received, dontWait: true) { try handleWorker() }
            }
            if ready.count > 1, ready[1].contains(.readable), let master {
                while let frames = try master.receiveMultipart(dontWait: true) { try handleMaster(frames) }
            }
            let now = monotonicSeconds()
            if session != 0, pollSent == nil { try sendPoll() }
            // The master has not answered for the liveness window: it is gone or restarted.
            if now - lastHeard > pollInterval * liveness + 1 {
                logger.warning("the master has not answered for \(Int(now - lastHeard)) s: registering again")
                master?.close()
                master = nil
            }
        }
        master?.close()
        router.close()
        if let refused { throw ClusterError(refused) }
    }

    // MARK: The master

    private func connect() throws {
        let socket = try context.socket(.dealer)
        try socket.setLinger(milliseconds: 0)
        try socket.setMaxMessageSize(bytes: Int64(options.maxFrameBytes) + 4096)
        try options.curve?.apply(to: socket)
        try socket.connect(options.masterEndpoint)
        master = socket
        session = 0
        pollSent = nil
        lastHeard = monotonicSeconds()
        var hello = Chimera_V1_ServerHello()
        hello.name = options.name
        hello.endpoint = endpoint
        hello.publicKey = options.curve?.keyPair.publicKey ?? ""
        hello.host = ProcessInfo.processInfo.hostName
        hello.pid = UInt32(ProcessInfo.processInfo.processIdentifier)
        hello.software = "chimera-swift"
        try send(WireMessage(.serverHello(hello)))
    }

    private func send(_ message: WireMessage) throws {
        guard let master else { return }
        var message = message
        message.control.requestID = nextRequestID
        nextRequestID += 1
        try master.send(copying: UnsafeRawBufferPointer(start: nil, count: 0), more: true)
        try master.send(try WireCodec.encode(message))
    }

    private func sendPoll() throws {
        var poll = Chimera_V1_ServerPoll()
        poll.serverID = serverID
        poll.session = session
        poll.jobID = replica?.jobID ?? 0
        poll.after = UInt64(replica?.replayed ?? 0)
        try send(WireMessage(.serverPoll(poll)))
        pollSent = monotonicSeconds()
    }

    private func handleMaster(_ frames: [Frame]) throws {
        lastHeard = monotonicSeconds()
        guard frames.first?.count == 0, let message = try? WireCodec.decode(frames[1...], limits: limits) else {
            logger.info("dropped an unreadable message from the master")
            return
        }
        switch message.body {
        case .serverWelcome(let welcome):
            serverID = welcome.serverID
            session = welcome.session
            pollInterval = Double(max(welcome.pollIntervalMs, 50)) / 1000
            liveness = Double(max(welcome.liveness, 1))
            logger.info("registered with the master as server \(serverID)")
        case .serverEvents(let events):
            pollSent = nil
            try apply(events, message)
        case .error(let error):
            if error.code == .forbidden {
                // Our key may not act as a server: asking again cannot change that.
                refused = "the master refused this server: \(error.message)"
                stopFlag.stop()
            } else if error.code == .unknownWorker {
                logger.warning("the master does not know this server (\(error.message)): registering again")
                master?.close()
                master = nil
            } else {
                logger.info("the master answered: \(error.message)")
            }
        default:
            break  // acks of our ranges
        }
    }

    /// Replays a batch of the job's events (starting the replica first when the batch opens a job).
    private func apply(_ batch: Chimera_V1_ServerEvents, _ message: WireMessage) throws {
        if batch.jobID == 0 {
            if replica != nil { endReplica() }
            return
        }
        if batch.first == 0, replica?.jobID != batch.jobID || batch.hasJob {
            if replica != nil { endReplica() }
            do {
                replica = try startReplica(batch, message)
            } catch {
                logger.warning("job \(batch.jobID): cannot hold range \(batch.start)..<\(batch.end): \(error)")
                return try report(failure: "\(error)", job: batch.jobID)
            }
        }
        guard var current = replica, current.jobID == batch.jobID else { return }
        guard Int(batch.first) == current.replayed else {
            // Events skipped or repeated: this copy can no longer follow the master's.
            replica = nil
            return try report(
                failure: "events from \(batch.first) arrived after \(current.replayed) replayed", job: batch.jobID)
        }
        for event in batch.events {
            current.replayed += 1
            if event.kind == .snapshot {
                replica = current
                try sendRange(current, tag: event.clock)
                continue
            }
            if event.kind == .join { current.sessions[event.worker] = event.session }
            guard let replayed = ReplicaEvent(wire: event) else { continue }
            var missing = false
            if case .push(let worker, let clock, _, _) = replayed {
                let pushed = current.pushes.removeValue(forKey: worker)
                current.state.replay(replayed) { into, scale in
                    guard let pushed, pushed.clock == UInt64(clock), pushed.values.count == into.count else {
                        missing = true
                        return
                    }
                    for i in into.indices { into[i] += scale * pushed.values[i] }
                }
            } else {
                current.state.replay(replayed) { _, _ in }
            }
            if missing {
                replica = nil
                return try report(
                    failure:
                        "the master counted an update of worker \(event.worker) for iteration \(event.clock) that never reached this server",
                    job: batch.jobID)
            }
        }
        replica = current
        try answerParked()
    }

    private func startReplica(_ batch: Chimera_V1_ServerEvents, _ message: WireMessage) throws -> Replica {
        let configuration = try TrainingConfiguration(wire: batch.job.config)
        let objective = try Objective(
            configuration: configuration, features: batch.job.featureNames.count,
            classes: batch.job.classes.map(Float.init))
        let range = Int(batch.start)..<Int(batch.end)
        guard range.upperBound <= objective.weightCount, !range.isEmpty else {
            throw ClusterError("range \(range) is not within the model's \(objective.weightCount) parameters")
        }
        let weights = try message.tensor(named: "weights", dtype: .float32, shape: [1, range.count]).floats()
        var optimizer: OptimizerState?
        if let json = message.tensors.first(where: { $0.name == "optimizer" })?.tensor.byteArray() {
            optimizer = try JSONDecoder().decode(OptimizerState.self, from: Data(json))
        }
        let state = ParameterServerState(
            replicaOf: configuration, objective: objective, range: range, initialWeights: weights,
            startIteration: Int(batch.startIteration), optimizerState: optimizer)
        logger.info("job \(batch.jobID): holding parameters \(range) (shard \(batch.shard))")
        return Replica(jobID: batch.jobID, range: range, state: state)
    }

    private func endReplica() {
        guard let ended = replica else { return }
        logger.info("job \(ended.jobID) ended after \(ended.state.completedIterations) iterations")
        replica = nil
        // Pulls still parked for it (or an earlier job) get `done`; those for a later job wait on.
        for pull in parked where pull.jobID <= ended.jobID {
            try? replyWeights(pull.peer, pull.requestID, jobID: pull.jobID, done: true)
        }
        parked.removeAll { $0.jobID <= ended.jobID }
    }

    private func sendRange(_ current: Replica, tag: UInt64) throws {
        var range = Chimera_V1_ServerRange()
        range.serverID = serverID
        range.session = session
        range.jobID = current.jobID
        range.tag = tag
        range.start = UInt64(current.range.lowerBound)
        range.end = UInt64(current.range.upperBound)
        var tensors = [NamedTensor("weights", .float32(current.state.weights, shape: [1, current.range.count]))]
        if let json = try? JSONEncoder().encode(current.state.optimizerState) {
            tensors.append(NamedTensor("optimizer", .bytes(Array(json))))
        }
        try send(WireMessage(.serverRange(range), tensors: tensors))
    }

    private func report(failure: String, job: UInt64) throws {
        var range = Chimera_V1_ServerRange()
        range.serverID = serverID
        range.session = session
        range.jobID = job
        range.failed = true
        range.error = failure
        try send(WireMessage(.serverRange(range)))
    }

    // MARK: Workers

    private func handleWorker() throws {
        let frames = received
        guard let (peer, payload) = try? WireCodec.splitRoutingEnvelope(frames) else {
            return count("no_envelope", "dropped a message without a routing envelope")
        }
        if let push = RoundCodec.decodePush(payload) {
            return try handlePush(peer, push.body, push.requestID) { push.tensor }
        }
        let message: WireMessage
        do {
            message = try WireCodec.decode(payload, limits: limits)
        } catch {
            count(error.code.metricLabel, "rejected a message: \(error)")
            return try reply(peer, .error(error.replyCode, error.description))
        }
        let requestID = message.control.requestID
        switch message.body {
        case .gradientPush(let push):
            try handlePush(peer, push, requestID) {
                try message.tensor(named: push.isDelta ? "delta" : "gradient")
            }
        case .weightPull(let pull):
            // A pull for a job this server has not seen yet waits for its events (the master's answer
            // to our poll may come after the worker's pull); one for an earlier job is over.
            if let current = replica, pull.jobID < current.jobID {
                return try replyWeights(peer, requestID, jobID: pull.jobID, done: true)
            }
            // The session is checked when the pull is answered: a worker that rejoined (a new
            // session) may ask before this server has replayed its new join.
            // A newer pull of the same worker replaces its waiting one.
            if let old = parked.firstIndex(where: { $0.workerID == pull.workerID && $0.jobID == pull.jobID }) {
                let replaced = parked.remove(at: old)
                try refuse(
                    replaced.peer, .stale, "replaced_pull", "replaced by a newer pull of worker \(pull.workerID)",
                    replaced.requestID)
            }
            if parked.count >= Self.maxParkedPulls {
                // A flood: the oldest waiting pull no joined worker made goes first, so a flood cannot
                // keep the job's own workers out.
                let joined = { (p: ParkedPull) in
                    self.replica?.jobID == p.jobID && self.replica?.sessions[p.workerID] == p.session
                }
                let index = parked.firstIndex { !joined($0) } ?? 0
                let evicted = parked.remove(at: index)
                try refuse(
                    evicted.peer, .limit, "parked_pulls", "\(Self.maxParkedPulls) pulls were waiting here",
                    evicted.requestID)
            }
            parked.append(
                ParkedPull(
                    peer: peer, requestID: requestID, jobID: pull.jobID, workerID: pull.workerID, session: pull.session,
                    after: Int(clamping: pull.afterEvents)))
            try answerParked()
        default:
            try refuse(
                peer, .badRequest, "unexpected_body",
                "a parameter server answers gradient pushes and weight pulls, not \(message.body?.kindName ?? "nothing")",
                requestID)
        }
    }

    private func handlePush(
        _ peer: Frame, _ push: Chimera_V1_GradientPush, _ requestID: UInt64, tensor: () throws -> Tensor
    ) throws {
        guard let current = replica, current.jobID == push.jobID else {
            return try refuse(peer, .stale, "stale", "job \(push.jobID) is not held here", requestID)
        }
        guard current.sessions[push.workerID] == push.session else {
            return try refuse(
                peer, .unknownWorker, "wrong_session",
                "worker \(push.workerID) is not in job \(push.jobID) with this session", requestID)
        }
        let values: Tensor
        do {
            values = try tensor()
        } catch {
            return try refuse(peer, .wrongShape, "wrong_tensor", "\(error)", requestID)
        }
        guard values.dtype == .float32, values.shape == [1, current.range.count] else {
            return try refuse(
                peer, .wrongShape, "wrong_tensor",
                "tensor is \(values.dtype) \(values.shape), expected float32 [1, \(current.range.count)]", requestID)
        }
        replica!.pushes[push.workerID] = (push.clock, values.floats())
        try reply(
            peer,
            WireMessage(
                .ack(
                    Chimera_V1_Ack.with {
                        $0.jobID = push.jobID; $0.clock = push.clock
                    }), requestID: requestID))
    }

    /// Answers the pulls whose events have been replayed.
    private func answerParked() throws {
        guard !parked.isEmpty else { return }
        var waiting: [ParkedPull] = []
        for pull in parked {
            guard let current = replica, current.jobID >= pull.jobID else {
                waiting.append(pull)
                continue
            }
            if current.jobID > pull.jobID {
                try replyWeights(pull.peer, pull.requestID, jobID: pull.jobID, done: true)
            } else if current.replayed >= pull.after {
                // Parked before its worker's join was replayed: its session is checked now.
                guard current.sessions[pull.workerID] == pull.session else {
                    try refuse(
                        pull.peer, .unknownWorker, "wrong_session",
                        "worker \(pull.workerID) is not in job \(pull.jobID) with this session", pull.requestID)
                    continue
                }
                try replyWeights(pull.peer, pull.requestID, jobID: pull.jobID, done: false)
            } else {
                waiting.append(pull)
            }
        }
        parked = waiting
    }

    private func replyWeights(_ peer: Frame, _ requestID: UInt64, jobID: UInt64, done: Bool) throws {
        var header = Chimera_V1_Weights()
        header.jobID = jobID
        header.done = done
        try envelope(peer)
        guard !done, let current = replica else {
            try router.send(try WireCodec.encode(WireMessage(.weights(header), requestID: requestID)))
            return
        }
        header.version = UInt64(current.state.version)
        header.minClock = UInt64(current.state.barrier.minClock ?? 0)
        try current.state.weights.withUnsafeBufferPointer {
            _ = try RoundCodec.send(header, requestID: requestID, weights: $0, outputs: 1, stride: $0.count, on: router)
        }
    }

    /// Answers a request it will not serve with an error, and counts it.
    private func refuse(
        _ peer: Frame, _ code: Chimera_V1_ErrorCode, _ kind: String, _ text: String, _ requestID: UInt64
    ) throws {
        count(kind, text)
        try reply(peer, .error(code, text, requestID: requestID))
    }

    private func count(_ kind: String, _ text: @autoclosure () -> String) {
        rejected[kind, default: 0] += 1
        let now = monotonicSeconds()
        guard now - (rejectionLogged[kind] ?? -1) >= 1 else { return }
        rejectionLogged[kind] = now
        logger.notice("\(text()) (\(rejected[kind]!) \(kind) so far)")
    }

    private func reply(_ peer: Frame, _ message: WireMessage) throws {
        try envelope(peer)
        try router.send(try WireCodec.encode(message))
    }

    private func envelope(_ peer: Frame) throws {
        try peer.withUnsafeBytes { (identity) throws(ZMQError) in try router.send(copying: identity, more: true) }
        try router.send(copying: UnsafeRawBufferPointer(start: nil, count: 0), more: true)
    }
}
