public import Foundation

/// What a master trains: linear models by distributed SGD, or bagged decision trees.
public enum MasterMode: String, Sendable, CaseIterable {
    case parameterServer = "parameter-server"
    case aggregation
}

/// How a master listens and behaves.
public struct MasterOptions: Sendable {
    public var mode = MasterMode.parameterServer
    /// Interface to bind; 127.0.0.1 unless the deployment needs more (then enable CURVE).
    public var host = "127.0.0.1"
    /// Workers ROUTER port; broadcast is port + 1 and control port + 2. 0: OS-chosen ports for all three.
    public var port = 5555
    public var heartbeatIntervalMilliseconds: UInt32 = 1_000
    /// Missed heartbeat intervals before a worker is declared dead.
    public var heartbeatLiveness: UInt32 = 3
    /// Where the final model and checkpoints are written (nil: not saved).
    public var modelDirectory: URL?
    /// Load the last checkpoint or model from `modelDirectory` at start and warm-start the next fit.
    public var resume = false
    /// Resuming an interrupted job: how many ready workers to wait for (nil: the checkpoint's workers,
    /// by name), and for how long before resuming with those that are back.
    public var expectWorkers: Int?
    public var resumeWaitSeconds = 30.0
    /// Live workers a master admits (a hello beyond is refused with ERROR_CODE_LIMIT).
    public var maxWorkers = 1_024
    /// Messages one peer may send per second; more are dropped unanswered (counted as rate_limited).
    public var maxPeerMessagesPerSecond = 100_000
    /// Fan-out predictions waiting for the workers at once (aggregation).
    public var maxFanOuts = 256
    /// Model files' permissions.
    public var modelFileMode = 0o600
    /// Largest frame accepted from a peer, in bytes (larger messages are refused by libzmq and the codec).
    public var maxFrameBytes = 1 << 30
    /// Fan-out prediction (aggregation): how long to wait for the workers' answers.
    public var fanOutTimeoutMilliseconds = 10_000

    /// CURVE: when set, every master socket is a CURVE server admitting only the allowed client keys.
    public var curve: CurveServerSettings?

    /// Also bind the control socket to this `inproc://` endpoint, for clients in this process (an
    /// embedded gateway: `ChimeraMaster.context` is the context they must use).
    public var inprocControlEndpoint: String?

    public init() {}

    var endpoints: (workers: String, broadcast: String, control: String) {
        if port == 0 { return ("tcp://\(host):*", "tcp://\(host):*", "tcp://\(host):*") }
        return ("tcp://\(host):\(port)", "tcp://\(host):\(port + 1)", "tcp://\(host):\(port + 2)")
    }
}
