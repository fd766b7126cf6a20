import CProcessShims

/// The scheduling class of a worker's compute thread, chosen from how long its passes take.
///
/// With long passes on a machine whose cores the workers and the master share, a worker woken by its
/// weights preempted the master's I/O thread before that thread had sent the other workers theirs, so
/// a round's workers computed one after the other; SCHED_BATCH wake-ups never preempt. With tiny
/// passes the class costs more than it saves (the woken thread migrates every round), so it is used
/// only above a threshold. Measurements: Benchmarks/RESULTS.md, "Design measurements".
struct ComputeScheduling {
    /// Passes longer than this switch to batch; shorter than `leaveBelow`, back (hysteresis).
    static let enterAbove = 0.000_3
    static let leaveBelow = 0.000_1
    private(set) var isBatch = false
    private var refused = false

    /// Adapts the calling thread's class to the last pass; returns a message when the kernel refused.
    mutating func observe(passSeconds: Double) -> String? {
        guard !refused else { return nil }
        let wantBatch = isBatch ? passSeconds > Self.leaveBelow : passSeconds > Self.enterAbove
        guard wantBatch != isBatch else { return nil }
        guard chimera_set_batch_scheduling(wantBatch ? 1 : 0) == 0 else {
            refused = true
            return "the kernel refused a scheduling class change; staying in the current one"
        }
        isBatch = wantBatch
        return nil
    }
}
