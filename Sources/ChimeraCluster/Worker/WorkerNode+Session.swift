import ChimeraML
import ChimeraWire
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// Registration: hello until welcomed, the broadcast subscription and its confirmation, heartbeats.
extension WorkerNode {
    // MARK: Registration

    /// Says hello until welcomed; connects the broadcast socket and starts heartbeats. Returns the job
    /// to join when one is running.
    func register() throws -> (start: Chimera_V1_JobStart, standardizer: Standardizer?)? {
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
        hello.dataDigest = shardDigest
        hello.labelDigest = data.labelDigest
        hello.columnBlock = options.columnBlock
        hello.stageEndpoint = stageEndpoint
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
                if attempt == 1 || attempt % 6 == 0 {
                    logger.info("waiting for the master at \(options.masterEndpoint)")
                }
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

    func connectBroadcast(_ advertised: String) throws {
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
    func confirmSubscription(_ sequence: UInt64) throws -> (start: Chimera_V1_JobStart, standardizer: Standardizer?)? {
        guard !subscribed else { return nil }
        let ready = Chimera_V1_SubscriptionReady.with {
            $0.workerID = workerID
            $0.session = session
            $0.syncSequence = sequence
        }
        guard let reply = try call(WireMessage(.subscriptionReady(ready)), timeout: options.requestTimeoutMilliseconds)
        else {
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

    func standardizer(from message: WireMessage) throws -> Standardizer? {
        guard let mean = try? message.tensor(named: "mean"), let scale = try? message.tensor(named: "scale") else {
            return nil
        }
        return Standardizer(mean: mean.floats(), scale: scale.floats())
    }
}
