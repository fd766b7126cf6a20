public import ChimeraML
import ChimeraWire
import Foundation
public import Logging
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
        /// Threads sharing a full-batch gradient pass, and OpenBLAS's threads for a network's products
        /// (more than one pays off when this worker has spare cores: `chimera local` gives each worker
        /// cores ÷ workers).
        public var computeThreads = 1
        /// The memory a job may need here (nil: what the machine and its cgroup have free).
        public var maxMemoryMiB: Int?
        /// Where the stage socket of pipeline jobs listens (a host or address; port chosen by the OS);
        /// nil: this worker takes no pipeline stage.
        public var stageBind: String? = "127.0.0.1"
        /// The shard is one block of a data set's columns (`chimera data split-columns` marks it).
        public var columnBlock = false

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
    let requests: RequestChannel
    /// Set it (from any thread, e.g. a signal handler) to make `run()` return.
    public let stopFlag = StopFlag()
    var workerID: UInt32 = 0
    var broadcast: Socket?
    var broadcastEndpoint = ""
    var heartbeat: HeartbeatSender?
    /// Aggregation: the trees this worker fitted last, kept for fan-out predictions.
    var members: TreeEnsemble?
    /// The shard's histogram bins, computed at the first bagging fit and kept: the shard never changes.
    var bins: FeatureBins?
    var scheduling = ComputeScheduling()
    /// The shard packed for the blocked kernel, kept between jobs with the same standardisation (the
    /// shard never changes; packing 200k × 21 rows takes ~5–10 ms of every fit otherwise).
    var packed: (standardizer: Standardizer?, labelNames: [String], rows: BlockedRows)?
    /// Pipeline jobs: the PULL socket neighbouring stages push to, where it listens, and the stage
    /// messages dropped (another job's, without the secret, malformed).
    var stageSocket: Socket?
    var stageEndpoint = ""
    var droppedStageMessages = 0

    public init(options: Options, data: Dataset, logger: Logger = Logger(label: "chimera.worker")) throws {
        // Workers are processes sharing the machine's cores: OpenBLAS would otherwise start one thread
        // per core in each of them.
        MLP.setBLASThreads(options.computeThreads)
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
    var isStopping: Bool { stopFlag.isStopped }

    /// Registers and serves jobs until the master says shutdown or `stop()` is called.
    public func run() throws {
        defer {
            heartbeat?.stop()
            sayGoodbye()
            stageSocket?.close()
        }
        try bindStageSocket()
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
                logger.info(
                    "the master does not know this worker (restarted, or it declared us dead); registering again")
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

    // MARK: Registration state
    var subscribed = false
    /// The Welcome's session secret, carried by every later message.
    var session: UInt64 = 0

    // MARK: Requests

    /// Sends a request and waits for its reply; on timeout (or when the wait is abandoned) the socket
    /// is replaced and nil returned.
    func call(_ message: WireMessage, timeout: Int32) throws -> WireMessage? {
        try requests.request(message, timeoutMilliseconds: timeout, abandon: { self.shouldAbandonWait })
    }

    /// Why a wait for the master should end early: stopping, a master that no longer knows this
    /// worker (restarted), or one silent for its liveness (dead). Looked at every 100 ms of a wait.
    var shouldAbandonWait: Bool {
        isStopping || heartbeat?.masterForgotUs == true || heartbeat?.masterSilent == true
    }

    /// What a job does after a wait for the master ended without a reply.
    func abandonedWait(job: UInt64) -> JobEnd {
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
    func sayGoodbye() {
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
