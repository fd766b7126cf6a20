import ChimeraML
import ChimeraWire
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// Workers' messages (on the workers endpoint): registration through the membership state machine,
/// sessions, subscription, heartbeats and goodbyes; round and bagging messages are handed on.
extension ChimeraMaster {
    func handleWorkerMessage(_ peer: Frame, _ message: WireMessage) throws {
        let requestID = message.control.requestID
        switch message.body {
        case .hello(let hello):
            try handleHello(peer, hello, message)
        case .subscriptionReady(let ready):
            guard try known(ready.workerID, ready.session, peer, requestID) else { return }
            membership[ready.workerID]?.subscribed = true
            // A worker that registered just before a fit started missed its JobStart: hand it over now.
            if var current = job, current.pipeline == nil, current.features == nil,
                current.state.clock(of: ready.workerID) == nil,
                let record = membership[ready.workerID],
                labelMismatch(record, joining: current) == nil
            {
                let clock = current.state.join(ready.workerID, rows: record.rows)
                current.failedWorkers.remove(record.name)
                job = current
                logger.info(
                    "\(record.name) joined job \(current.id) at iteration \(clock)",
                    metadata: ["worker": "\(record.name)", "job": "\(current.id)", "iteration": "\(clock)"])
                try reply(
                    to: peer,
                    WireMessage(
                        .jobStart(current.start(startClock: clock)), requestID: requestID,
                        tensors: current.standardizerTensors))
                return
            }
            try reply(to: peer, WireMessage(.ack(Chimera_V1_Ack()), requestID: requestID))
        case .heartbeat(let beat):
            guard try known(beat.workerID, beat.session, peer, requestID) else { return }
            try reply(
                to: peer, WireMessage(.ack(Chimera_V1_Ack.with { $0.jobID = job?.id ?? 0 }), requestID: requestID))
        case .weightPull(let pull):
            guard try known(pull.workerID, pull.session, peer, requestID) else { return }
            try handlePull(peer, pull, requestID)
        case .gradientPush(let push):
            guard try known(push.workerID, push.session, peer, requestID) else { return }
            let compact = job?.state.configuration.wireDType.dtype ?? .float32
            try handlePush(
                peer, push, requestID: requestID,
                stageWeights: { shape throws(WireError) in
                    guard message.tensors.contains(where: { $0.name == "weights" }) else { return nil }
                    return try message.tensor(named: "weights", dtype: .float32, shape: shape)
                }
            ) { shape throws(WireError) in
                // float32 always; the fit's compact dtype when it has one.
                let name = push.isDelta ? "delta" : "gradient"
                let tensor = try message.tensor(named: name)
                return try message.tensor(
                    named: name, dtype: tensor.dtype == compact ? compact : .float32, shape: shape)
            }
        case .partialMargins(let margins):
            guard try known(margins.workerID, margins.session, peer, requestID) else { return }
            try handleMargins(peer, margins, message)
        case .workerResult(let result):
            guard try known(result.workerID, result.session, peer, requestID) else { return }
            try handleWorkerResult(peer, result, message)
        case .memberPrediction(let answer):
            guard try known(answer.workerID, answer.session, peer, requestID) else { return }
            try handleMemberPrediction(peer, answer, message)
        case .goodbye(let goodbye):
            guard try known(goodbye.workerID, goodbye.session, peer, requestID) else { return }
            logger.info("\(membership[goodbye.workerID]?.name ?? "?") left: \(goodbye.reason)")
            try markDead(goodbye.workerID, reason: "left: \(goodbye.reason)")
            try reply(to: peer, WireMessage(.ack(Chimera_V1_Ack()), requestID: requestID))
        default:
            counters.reject("unexpected_body")
            logRejection("unexpected_body", "\(message.body?.kindName ?? "?") is not a worker request")
            try reply(
                to: peer,
                .error(.badRequest, "\(message.body?.kindName ?? "?") is not a worker request", requestID: requestID))
        }
    }

    /// Whether `id` is a live worker and the message carries its registration's session; if not,
    /// answers UNKNOWN_WORKER (a worker that was forgotten says hello again; another peer cannot act
    /// for it).
    func known(_ id: UInt32, _ session: UInt64, _ peer: Frame, _ requestID: UInt64) throws -> Bool {
        switch membership.identify(id, session: session, now: monotonicSeconds()) {
        case .known:
            return true
        case .unknown:
            counters.reject("unknown_worker")
            try reply(
                to: peer,
                .error(.unknownWorker, "worker \(id) is not registered: send WorkerHello", requestID: requestID))
        case .wrongSession:
            counters.reject("wrong_session")
            try reply(
                to: peer,
                .error(
                    .unknownWorker, "worker \(id): the session is not this registration's (send WorkerHello)",
                    requestID: requestID))
        }
        return false
    }

    func handleHello(_ peer: Frame, _ hello: Chimera_V1_WorkerHello, _ message: WireMessage) throws {
        let requestID = message.control.requestID
        guard peerRole.mayTrain else {
            counters.reject("forbidden_role")
            logRejection("forbidden_role", "refused \(hello.name): its CURVE key is a client's, not a worker's")
            return try reply(
                to: peer,
                .error(.forbidden, "this CURVE key is a client's: it may not join training", requestID: requestID))
        }
        let moments: ColumnMoments?
        do throws(WireError) {
            moments = try Self.columnMoments(message, features: hello.featureNames.count, rows: hello.rows)
        } catch {
            // Sums that were sent but are unusable are an error now, not a refused fit later.
            counters.reject("bad_hello")
            try reply(to: peer, .error(.badRequest, "\(hello.name): \(error.message)", requestID: requestID))
            return
        }
        let facts = Membership.Hello(
            name: hello.name, featureNames: hello.featureNames.map(normalizedColumnName),
            rows: Int(clamping: hello.rows),
            labels: hello.labelValues.map(Float.init), labelNames: hello.labelNames, moments: moments, pid: hello.pid,
            host: hello.host, columnBlock: hello.columnBlock)
        let now = monotonicSeconds()
        let admission: Membership.Admission
        switch membership.admit(facts, reference: job?.featureNames, now: now) {
        case .failure(let refusal):
            counters.reject(refusal.metric)
            let text = refusal.message(name: hello.name, maxWorkers: options.maxWorkers)
            if case .full = refusal {
                logRejection(
                    refusal.metric,
                    "refused \(hello.name): \(membership.live) workers are registered (--max-workers \(options.maxWorkers))"
                )
            } else if case .columnsDiffer = refusal {
                logger.info("refused \(hello.name): \(text)")
            }
            return try reply(to: peer, .error(refusal.code, text, requestID: requestID))
        case .success(let admitted):
            admission = admitted
        }
        if admission.restarting { try markDead(admission.id, reason: "restarted") }
        let record = membership.register(facts, as: admission, session: UInt64.random(in: 1...UInt64.max), now: now)
        let id = record.id
        record.dataDigest = hello.dataDigest
        record.stageEndpoint = hello.stageEndpoint
        record.stageKey = peerKey
        record.labelDigest = hello.labelDigest
        var welcome = Chimera_V1_Welcome()
        welcome.workerID = id
        welcome.session = record.session
        welcome.heartbeatIntervalMs = options.heartbeatIntervalMilliseconds
        welcome.heartbeatLiveness = options.heartbeatLiveness
        welcome.broadcastEndpoint = endpoints.broadcast
        var tensors: [NamedTensor] = []
        if let current = job, let mismatch = labelMismatch(record, joining: current) {
            logger.info("\(hello.name) does not join job \(current.id): \(mismatch); it waits for the next fit")
        } else if let current = job, current.pipeline != nil || current.features != nil {
            // A pipeline's stages are fixed when it starts: a newcomer waits for the next fit.
            logger.info(
                "\(hello.name) waits for the next fit: job \(current.id) is a pipeline with its stages assigned")
        } else if var current = job {
            let clock = current.state.join(id, rows: record.rows)
            // Back in the job: its earlier failure is no longer the report's news.
            current.failedWorkers.remove(hello.name)
            welcome.currentJob = current.start(startClock: clock)
            tensors = current.standardizerTensors
            job = current
            logger.info(
                "\(hello.name) joined job \(current.id) at iteration \(clock)",
                metadata: ["worker": "\(hello.name)", "job": "\(current.id)", "iteration": "\(clock)"])
        }
        logger.info(
            "\(hello.name) (pid \(hello.pid), \(hello.rows) rows) registered as worker \(id)",
            metadata: ["worker": "\(hello.name)"])
        try reply(to: peer, WireMessage(.welcome(welcome), requestID: requestID, tensors: tensors))
    }

    /// The hello's column sums (float64, or float32, `[features]` each), nil when it sent none.
    static func columnMoments(_ message: WireMessage, features: Int, rows: UInt64) throws(WireError) -> ColumnMoments? {
        let names = ["column_sum", "column_sum_of_squares"]
        guard message.tensors.contains(where: { names.contains($0.name) }) else { return nil }
        var columns: [[Double]] = []
        for name in names {
            let tensor = try message.tensor(named: name)
            guard tensor.dtype == .float64 || tensor.dtype == .float32, tensor.shape == [features] else {
                throw WireError(
                    .wrongTensor,
                    "tensor \"\(name)\" is \(tensor.dtype) \(tensor.shape), expected float64 [\(features)] (one per feature)"
                )
            }
            columns.append(tensor.doubles())
        }
        var moments = ColumnMoments(columns: features)
        moments.count = Double(rows)
        moments.sum = columns[0]
        moments.sumOfSquares = columns[1]
        return moments
    }

}
