import ChimeraML
import ZeroMQ

/// What the master knows of one worker.
///
/// A class: the master reads and updates records several times per message, and copying a struct with
/// strings and arrays out of the dictionary each time cost retains and releases on the round's path.
final class WorkerRecord {
    let id: UInt32
    var name: String
    var rows: Int
    var featureNames: [String]
    var labels: [Float]
    /// Class names, when the worker's labels are names (then `labels` is empty).
    var labelNames: [String]
    var moments: ColumnMoments?
    var pid: UInt32
    var host: String
    var lastSeen: Double
    /// The Welcome's secret: every later message of this registration must carry it.
    let session: UInt64
    var subscribed = false
    var alive = true
    /// A start request waiting for the barrier: where to answer and since when.
    var pendingPull: PendingPull?
    var barrierWaitSeconds = 0.0
    /// Its clock in the current job when it left it (a dead worker's report shows how far it got).
    var lastClock = 0
    /// From the hello: a digest of its data (pipeline stages of a replica need the same), and where
    /// its stage socket listens (empty: it cannot run a pipeline stage).
    var dataDigest: UInt64 = 0
    var stageEndpoint = ""
    /// Its stage socket's CURVE public key: the key it authenticated with (empty without CURVE).
    var stageKey = ""
    /// From the hello: a digest of its labels (feature blocks must hold the same rows' labels).
    var labelDigest: UInt64 = 0

    struct PendingPull {
        let peer: Frame
        let requestID: UInt64
        let clock: Int
        let since: Double
    }

    init(
        id: UInt32, name: String, rows: Int, featureNames: [String], labels: [Float], labelNames: [String],
        moments: ColumnMoments?,
        pid: UInt32, host: String, lastSeen: Double, session: UInt64
    ) {
        self.session = session
        self.id = id
        self.name = name
        self.rows = rows
        self.featureNames = featureNames
        self.labels = labels
        self.labelNames = labelNames
        self.moments = moments
        self.pid = pid
        self.host = host
        self.lastSeen = lastSeen
    }
}
