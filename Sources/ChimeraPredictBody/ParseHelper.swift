import ChimeraCluster
import Dispatch
import Glibc
import Synchronization
import ZeroMQ

/// A second thread for reading the second half of a large predict body while the event loop reads
/// the first.
///
/// A thread woken on an idle core starts tens of µs later, and so does the event loop woken when the
/// half is done: a large share of a 1,000-row predict (Benchmarks/RESULTS.md). So the helper is
/// woken as soon as a large body's head arrives (`wakeEarly`, while the body is still being read)
/// and then spins briefly for its half, and the event loop spins for the result instead of sleeping.
/// Spinning is bounded, and only happens for a body read alone (the caller's rule), so under load
/// it costs nothing.
public final class ParseHelper: @unchecked Sendable {
    public static let shared = ParseHelper()

    /// How long the woken helper waits for its half before sleeping again.
    private static let spinForJob = 0.000_3

    private enum Slot: Int {
        case empty = 0, posted, done
    }

    private let wakeup = DispatchSemaphore(value: 0)
    /// True from a wake-up signal until the helper stops looking for a job (one signal per wake-up).
    private let awake = Atomic<Bool>(false)
    private let slot = Atomic<Int>(Slot.empty.rawValue)
    /// One body at a time uses the helper; another runs sequentially.
    private let inUse = Atomic<Bool>(false)
    // Written by the poster before `slot` becomes .posted, run and cleared by the helper before
    // `slot` becomes .done (the atomics order both).
    private var job: (() -> Void)?

    private init() {
        DedicatedThread.start(name: "chimera-parse-helper") { [self] in serve() }
    }

    /// Wakes the helper ahead of a `run` (it looks for a job for a short while, then sleeps again).
    public func wakeEarly() {
        if !awake.exchange(true, ordering: .sequentiallyConsistent) { wakeup.signal() }
    }

    /// Runs `theirs` on the helper and `mine` here, and returns when both are done; both on this
    /// thread, one after the other, when the helper is taken.
    func run(_ theirs: @escaping () -> Void, alongside mine: () -> Void) {
        guard !inUse.exchange(true, ordering: .acquiring) else {
            mine()
            theirs()
            return
        }
        defer { inUse.store(false, ordering: .releasing) }
        job = theirs
        slot.store(Slot.posted.rawValue, ordering: .sequentiallyConsistent)
        wakeEarly()
        mine()
        // The helper's half is about as long as this one: spin, yielding the core after a moment in
        // case the helper is waiting for it.
        var spins = 0
        while slot.load(ordering: .acquiring) != Slot.done.rawValue {
            spins += 1
            if spins > 2_000 { sched_yield() }
        }
        slot.store(Slot.empty.rawValue, ordering: .releasing)
    }

    private func serve() {
        while true {
            wakeup.wait()
            while true {
                let deadline = monotonicSeconds() + Self.spinForJob
                while slot.load(ordering: .acquiring) != Slot.posted.rawValue && monotonicSeconds() < deadline {}
                if slot.load(ordering: .acquiring) == Slot.posted.rawValue {
                    job?()
                    job = nil
                    slot.store(Slot.done.rawValue, ordering: .releasing)
                }
                awake.store(false, ordering: .sequentiallyConsistent)
                // A job posted while this thread was giving up found `awake` still set and did not
                // signal: take it now.
                guard slot.load(ordering: .sequentiallyConsistent) == Slot.posted.rawValue,
                    !awake.exchange(true, ordering: .sequentiallyConsistent)
                else { break }
            }
        }
    }
}
