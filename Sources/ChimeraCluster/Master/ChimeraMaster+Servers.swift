import ChimeraML
import ChimeraWire
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// Parameter servers (`chimera server`): their registration, the long polls through which they read
/// a sharded job's events, the ranges they send back for checkpoints and the model, and their death.
extension ChimeraMaster {
    func handleServerMessage(_ peer: Frame, _ message: WireMessage) throws {
        let requestID = message.control.requestID
        guard peerRole.mayServe else {
            counters.reject("forbidden_role")
            logRejection("forbidden_role", "refused a parameter server's message: its CURVE key is not a server's")
            return try reply(
                to: peer,
                .error(
                    .forbidden, "this CURVE key may not act as a parameter server (--curve-allow-servers)",
                    requestID: requestID))
        }
        switch message.body {
        case .serverHello(let hello): try handleServerHello(peer, hello, requestID)
        case .serverPoll(let poll):
            guard let record = try knownServer(poll.serverID, poll.session, peer, requestID) else { return }
            record.lastSeen = monotonicSeconds()
            record.pendingPoll = (peer, requestID, poll.jobID, Int(clamping: poll.after), record.lastSeen)
            if let current = job, current.shards?.shardIndex(of: record.id) != nil {
                job!.shards!.replayed[record.id] = poll.jobID == current.id ? Int(clamping: poll.after) : 0
                job!.shards!.trim()
            }
            try answerPoll(record, keepAlive: false)
        case .serverRange(let range):
            guard let record = try knownServer(range.serverID, range.session, peer, requestID) else { return }
            record.lastSeen = monotonicSeconds()
            try handleServerRange(peer, record, range, message)
        default: break
        }
    }

    private func knownServer(_ id: UInt32, _ session: UInt64, _ peer: Frame, _ requestID: UInt64) throws
        -> ServerRegistry.Record?
    {
        if let record = servers.identify(id, session: session) { return record }
        counters.reject("wrong_session")
        try reply(
            to: peer,
            .error(
                .unknownWorker, "server \(id) is not registered with this session (send ServerHello)",
                requestID: requestID))
        return nil
    }

    private func handleServerHello(_ peer: Frame, _ hello: Chimera_V1_ServerHello, _ requestID: UInt64) throws {
        guard !hello.name.isEmpty, !hello.endpoint.isEmpty else {
            counters.reject("bad_request")
            return try reply(
                to: peer, .error(.badRequest, "ServerHello needs a name and an endpoint", requestID: requestID))
        }
        if options.curve != nil && hello.publicKey.utf8.count != 40 {
            counters.reject("bad_request")
            return try reply(
                to: peer,
                .error(
                    .badRequest, "this cluster uses CURVE: the server must give its public key", requestID: requestID))
        }
        let now = monotonicSeconds()
        let (record, replaced) = servers.register(hello, session: UInt64.random(in: 1...UInt64.max), now: now)
        logger.info(
            "parameter server \(record.name) registered (\(record.endpoint), pid \(record.pid) on \(record.host))")
        try reply(
            to: peer,
            WireMessage(
                .serverWelcome(
                    Chimera_V1_ServerWelcome.with {
                        $0.serverID = record.id
                        $0.session = record.session
                        $0.pollIntervalMs = options.heartbeatIntervalMilliseconds
                        $0.liveness = options.heartbeatLiveness
                    }), requestID: requestID))
        if let replaced {
            try serverLost(replaced.id, replaced.name, reason: "restarted (its copy of the weights is gone)")
        }
    }

    /// Answers a server's parked poll with the job's events it has not replayed (the job's start
    /// and its range first, when it has not seen the job); with nothing new, only for `keepAlive`.
    func answerPoll(_ record: ServerRegistry.Record, keepAlive: Bool) throws {
        guard let pending = record.pendingPoll else { return }
        var body = Chimera_V1_ServerEvents()
        var tensors: [NamedTensor] = []
        if let current = job, let shards = current.shards, let index = shards.shardIndex(of: record.id) {
            body.jobID = current.id
            let fresh = pending.jobID != current.id
            guard let events = shards.events(after: fresh ? 0 : pending.after) else {
                return try serverLost(
                    record.id, record.name, reason: "asked for events the master no longer holds (it lost its place)")
            }
            if events.isEmpty && !keepAlive && !fresh { return }
            body.first = UInt64(fresh ? 0 : pending.after)
            body.events = Array(events)
            if fresh {
                let range = shards.shards[index].range
                body.job = current.start(startClock: shards.startIteration)
                body.shard = UInt32(index)
                body.start = UInt64(range.lowerBound)
                body.end = UInt64(range.upperBound)
                body.startIteration = UInt64(shards.startIteration)
                tensors.append(NamedTensor("weights", .float32(Array(shards.initial[range]), shape: [1, range.count])))
                if let optimizer = shards.initialOptimizer,
                    let json = try? JSONEncoder().encode(optimizer.slice(range))
                {
                    tensors.append(NamedTensor("optimizer", .bytes(Array(json))))
                }
            }
        } else if !keepAlive {
            return
        }
        record.pendingPoll = nil
        try reply(to: pending.peer, WireMessage(.serverEvents(body), requestID: pending.requestID, tensors: tensors))
    }

    /// Moves the state machine's new events into the job's log and answers the servers waiting for them.
    func flushReplicaEvents() throws {
        guard job?.shards != nil else { return }
        let events = job!.state.takeEvents()
        if !events.isEmpty {
            job!.shards!.append(
                events.map { event in
                    var session: UInt64 = 0
                    if case .join(let worker, _) = event { session = membership[worker]?.session ?? 0 }
                    return event.wire(session: session)
                })
        }
        for shard in job!.shards!.shards {
            guard let record = servers.servers[shard.server], record.pendingPoll != nil else { continue }
            try answerPoll(record, keepAlive: false)
            if job?.shards == nil { return }
        }
    }

    /// Sends a sharded job's round replies: no weights, the number of events the servers must have
    /// replayed before they serve them.
    func deliverSharded(_ replies: [ParameterServerState.Reply]) throws {
        try flushReplicaEvents()
        guard let current = job, let shards = current.shards else { return }
        var header = Chimera_V1_Weights()
        header.jobID = current.id
        header.version = UInt64(current.state.version)
        header.minClock = UInt64(current.state.barrier.minClock ?? 0)
        header.events = UInt64(shards.eventCount)
        let now = monotonicSeconds()
        for case .weights(let worker, let done) in replies {
            guard let record = membership[worker], let pending = record.pendingPull else { continue }
            record.pendingPull = nil
            record.barrierWaitSeconds += now - pending.since
            header.done = done
            try reply(to: pending.peer, WireMessage(.weights(header), requestID: pending.requestID))
        }
    }

    /// Asks the servers for their ranges (a checkpoint); the checkpoint is written when all are in.
    func requestShardCheckpoint() throws {
        job!.shards!.checkpointTag = job!.shards!.snapshot(iteration: job!.state.completedIterations)
        try flushReplicaEvents()
    }

    /// The job ended (not failed): the workers are told, and the servers asked for their final
    /// ranges; the job reports once they are in. Returns false when they are in already.
    func collectFinalRanges(state: Chimera_V1_JobState, error: String, code: Chimera_V1_ErrorCode) throws -> Bool {
        guard let shards = job?.shards, !shards.collected else { return false }
        if shards.finishing == nil {
            job!.shards!.finishing = (state, error, code)
            job!.shards!.finishingSince = monotonicSeconds()
            try deliver(job!.state.finish())
            job!.shards!.finalTag = job!.shards!.snapshot(iteration: job!.state.completedIterations)
            try flushReplicaEvents()
        }
        return true
    }

    private func handleServerRange(
        _ peer: Frame, _ record: ServerRegistry.Record, _ range: Chimera_V1_ServerRange, _ message: WireMessage
    ) throws {
        let requestID = message.control.requestID
        guard let current = job, current.id == range.jobID, let shards = current.shards,
            let index = shards.shardIndex(of: record.id)
        else {
            return try reply(to: peer, .error(.stale, "job \(range.jobID) is not running", requestID: requestID))
        }
        if range.failed {
            try reply(to: peer, WireMessage(.ack(Chimera_V1_Ack()), requestID: requestID))
            return try serverLost(record.id, record.name, reason: "failed: \(range.error)")
        }
        let expected = shards.shards[index].range
        let weights: [Float]
        var optimizer: OptimizerState?
        do throws(WireError) {
            guard range.start == expected.lowerBound, range.end == expected.upperBound else {
                throw WireError(.wrongTensor, "range \(range.start)..<\(range.end), expected \(expected)")
            }
            weights = try message.tensor(named: "weights", dtype: .float32, shape: [1, expected.count]).floats()
            if let json = message.tensors.first(where: { $0.name == "optimizer" })?.tensor.byteArray() {
                optimizer = try? JSONDecoder().decode(OptimizerState.self, from: Data(json))
            }
        } catch {
            counters.reject(error.code.metricLabel)
            try reply(to: peer, .error(.wrongShape, error.message, requestID: requestID))
            return try serverLost(record.id, record.name, reason: "sent an unusable range (\(error.message))")
        }
        try reply(to: peer, WireMessage(.ack(Chimera_V1_Ack.with { $0.jobID = current.id }), requestID: requestID))
        guard
            let snapshot = job!.shards!.receive(
                tag: range.tag, shard: index, weights: weights, optimizer: optimizer)
        else { return }
        for (part, values) in snapshot.weights {
            job!.state.replaceWeights(in: part) { out in
                values.withUnsafeBufferPointer { _ = out.update(fromContentsOf: $0) }
            }
        }
        if let joined = snapshot.optimizer { job!.shards!.optimizer = joined }
        if range.tag == job!.shards!.finalTag, let finishing = job!.shards!.finishing {
            job!.shards!.collected = true
            return try finishJob(state: finishing.state, error: finishing.error, code: finishing.code)
        }
        if range.tag == job!.shards!.checkpointTag {
            var fitted = fittedModel(job!, finished: false)
            fitted.iterations = snapshot.iteration
            saveModel(fitted, file: "checkpoint.json")
        }
    }

    /// How long a finished job waits for its servers' final ranges (they are sent at once; a server
    /// that is alive but does not send them is stuck).
    static let finalRangesSeconds = 60.0

    /// Every liveness check: keeps parked polls alive and declares silent servers dead.
    func checkServers(_ now: Double) throws {
        let interval = Double(options.heartbeatIntervalMilliseconds) / 1000
        for record in servers.servers.values {
            if let pending = record.pendingPoll, now - pending.since >= interval {
                try answerPoll(record, keepAlive: true)
            }
        }
        if let shards = job?.shards, shards.finishing != nil, !shards.collected,
            now - shards.finishingSince > Self.finalRangesSeconds
        {
            try finishJob(
                state: .failed,
                error:
                    "the parameter servers did not send their final ranges within \(Int(Self.finalRangesSeconds)) s: the fit's weights are lost"
            )
        }
        for record in servers.removeSilent(now: now, seconds: interval * Double(options.heartbeatLiveness)) {
            logger.warning("parameter server \(record.name) missed \(options.heartbeatLiveness) polls: declared dead")
            try serverLost(
                record.id, record.name, reason: "stopped answering (missed \(options.heartbeatLiveness) polls)")
        }
    }

    /// A server of the running job is gone, its range of the weights with it. With a checkpoint of
    /// the job (checkpoint_every), the job goes back to it and resumes once as many servers are
    /// registered again (within `--resume-wait-s`); without one it fails, naming the server.
    func serverLost(_ id: UInt32, _ name: String, reason: String) throws {
        guard let current = job, let shards = current.shards, let index = shards.shardIndex(of: id) else { return }
        let range = shards.shards[index].range
        let lost =
            "parameter server \(name) (shard \(index + 1) of \(shards.shards.count), parameters \(range.lowerBound)..<\(range.upperBound)) \(reason) at iteration \(current.state.completedIterations)"
        if shards.finishing == nil, let checkpoint = resumableCheckpoint(of: current) {
            return try interruptForServers(lost, checkpoint: checkpoint, servers: shards.shards.count)
        }
        try finishJob(
            state: .failed,
            error:
                "\(lost): its part of the weights is lost; fit again once it is back (with checkpoint_every, the job resumes from its last checkpoint when the servers are back)",
            code: .noWorkers)
    }

    /// The job's own checkpoint on disk, when it has one to go back to.
    private func resumableCheckpoint(of current: Job) -> FittedModel? {
        guard let directory = options.modelDirectory, current.state.configuration.checkpointEvery > 0,
            let saved = try? FittedModel.load(from: directory.appendingPathComponent("checkpoint.json")),
            saved.jobID == current.id, saved.isInterrupted
        else { return nil }
        return saved
    }

    /// Ends the job's current run without reporting: the workers stop, a waiting client keeps
    /// waiting, and the job resumes from `checkpoint` under its own id once `servers` servers are
    /// registered (`resumeIfReady`), or fails at the resume deadline.
    private func interruptForServers(_ lost: String, checkpoint: FittedModel, servers wanted: Int) throws {
        guard let current = job else { return }
        try deliver(job!.state.finish())
        try releaseMargins()
        try publish(
            WireMessage(
                .jobStop(
                    Chimera_V1_JobStop.with {
                        $0.jobID = current.id
                        $0.reason = "\(lost); resuming from the checkpoint at iteration \(checkpoint.iterations)"
                    })))
        job = nil
        jobs.end()
        resumingClient = current.client
        var waiting = fitReport(current)
        waiting.iterations = UInt64(checkpoint.iterations)
        lastJob = JobSummary(
            id: current.id, state: .running, report: waiting,
            error: "waiting for \(wanted) parameter servers to resume from iteration \(checkpoint.iterations)",
            lossHistory: Array(current.state.lossHistory.prefix(checkpoint.iterations)),
            config: current.state.configuration.wire)
        var plan = checkpoint
        plan.configuration.servers = wanted
        interrupted = plan
        resumeDeadline = monotonicSeconds() + options.resumeWaitSeconds
        resumeReported = -1
        logger.warning(
            "job \(current.id): \(lost); it goes back to its checkpoint (iteration \(checkpoint.iterations)) and resumes when \(wanted) parameter servers are registered (at most \(Int(options.resumeWaitSeconds)) s)"
        )
    }
}
