import ChimeraML
import ZeroMQ

/// What the master knows of one worker.
struct WorkerRecord {
    let id: UInt32
    var name: String
    var rows: Int
    var featureNames: [String]
    var labels: [Float]
    var moments: ColumnMoments?
    var pid: UInt32
    var lastSeen: Double
    var subscribed = false
    var alive = true
    /// A start request waiting for the barrier: where to answer and since when.
    var pendingPull: PendingPull?
    var barrierWaitSeconds = 0.0

    struct PendingPull {
        let peer: Frame
        let requestID: UInt64
        let clock: Int
        let since: Double
    }
}
