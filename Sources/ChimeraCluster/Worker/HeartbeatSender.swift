import ChimeraWire
import Dispatch
import Synchronization
import ZeroMQ

/// Sends `Heartbeat`s from a thread and a REQ socket of its own, so the worker stays alive in the
/// master's eyes while it computes or waits at the barrier. A missed reply replaces the socket.
///
/// It is also how the worker learns that the master is gone: "unknown worker" (a restarted master,
/// or one that declared us dead) or no answer for `liveness` intervals (a dead or cut-off master).
/// The worker's waits look at both, so none outlasts the master by more than that.
final class HeartbeatSender: Sendable {
    private let state = Mutex<(jobID: UInt64, clock: UInt64)>((0, 0))
    private let stopping = Atomic<Bool>(false)
    private let forgotten = Atomic<Bool>(false)
    /// Monotonic milliseconds of the last answer (any answer) from the master.
    private let lastAnswer = Atomic<Int64>(0)
    private let silenceLimitMilliseconds: Int64
    private let finished = DispatchSemaphore(value: 0)

    init(
        context: Context, endpoint: String, curve: CurveClientSettings?, workerID: UInt32, session: UInt64,
        intervalMilliseconds: Int, liveness: Int
    ) throws {
        silenceLimitMilliseconds = Int64(intervalMilliseconds * max(liveness, 1))
        lastAnswer.store(Int64(monotonicSeconds() * 1000), ordering: .releasing)
        DedicatedThread.start(name: "chimera-heartbeat") { [self] in
            // Its own channel: the worker's REQ socket may be parked at the barrier meanwhile.
            let channel = RequestChannel(context: context, endpoint: endpoint, curve: curve)
            while !stopping.load(ordering: .acquiring) {
                let (jobID, clock) = self.state.withLock { $0 }
                var beat = Chimera_V1_Heartbeat()
                beat.workerID = workerID
                beat.session = session
                beat.jobID = jobID
                beat.clock = clock
                beat.state = jobID == 0 ? .idle : .training
                // A lost heartbeat needs no action. "Unknown worker" means the master declared us dead
                // (we were stopped, or cut off, for too long) or is a new master: register again.
                let reply = try? channel.request(
                    WireMessage(.heartbeat(beat)), timeoutMilliseconds: Int32(intervalMilliseconds),
                    abandon: { self.stopping.load(ordering: .acquiring) })
                if let reply {
                    lastAnswer.store(Int64(monotonicSeconds() * 1000), ordering: .releasing)
                    if case .error(let error) = reply.body, error.code == .unknownWorker {
                        forgotten.store(true, ordering: .releasing)
                    }
                }
                // Sleep in small steps so stop() is prompt.
                var waited = 0
                while waited < intervalMilliseconds && !stopping.load(ordering: .acquiring) {
                    usleep(20_000)
                    waited += 20
                }
            }
            finished.signal()
        }
    }

    func update(jobID: UInt64, clock: UInt64) { state.withLock { $0 = (jobID, clock) } }

    /// The master answered a heartbeat with "unknown worker": register again.
    var masterForgotUs: Bool { forgotten.load(ordering: .acquiring) }

    /// No answer to heartbeats for `liveness` intervals: the master is dead or cut off.
    var masterSilent: Bool {
        Int64(monotonicSeconds() * 1000) - lastAnswer.load(ordering: .acquiring) > silenceLimitMilliseconds
    }

    func stop() {
        if !stopping.exchange(true, ordering: .acquiringAndReleasing) { finished.wait() }
    }

    deinit { stop() }
}

#if canImport(Glibc)
    import Glibc
#endif
