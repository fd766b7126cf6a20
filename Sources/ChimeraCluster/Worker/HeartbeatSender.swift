import ChimeraWire
import Dispatch
import Synchronization
import ZeroMQ

/// Sends `Heartbeat`s from a thread and a REQ socket of its own, so the worker stays alive in the
/// master's eyes while it computes or waits at the barrier. A missed reply replaces the socket.
final class HeartbeatSender: Sendable {
    private let state = Mutex<(jobID: UInt64, clock: UInt64)>((0, 0))
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    init(context: Context, endpoint: String, workerID: UInt32, intervalMilliseconds: Int) throws {
        DedicatedThread.start(name: "chimera-heartbeat") { [self] in
            var socket: Socket?
            var requestID: UInt64 = 0
            while !stopping.load(ordering: .acquiring) {
                do {
                    if socket == nil {
                        let fresh = try context.socket(.req)
                        try fresh.setLinger(milliseconds: 0)
                        try fresh.setReceiveTimeout(milliseconds: Int32(intervalMilliseconds * 2))
                        try fresh.connect(endpoint)
                        socket = fresh
                    }
                    let (jobID, clock) = self.state.withLock { $0 }
                    requestID += 1
                    var beat = Chimera_V1_Heartbeat()
                    beat.workerID = workerID
                    beat.jobID = jobID
                    beat.clock = clock
                    beat.state = jobID == 0 ? .idle : .training
                    try socket!.send(WireCodec.encode(WireMessage(.heartbeat(beat), requestID: requestID)))
                    if try socket!.receiveMultipart() == nil {
                        socket?.close()
                        socket = nil
                    }
                } catch {
                    socket?.close()
                    socket = nil
                }
                // Sleep in small steps so stop() is prompt.
                var waited = 0
                while waited < intervalMilliseconds && !stopping.load(ordering: .acquiring) {
                    usleep(20_000)
                    waited += 20
                }
            }
            socket?.close()
            finished.signal()
        }
    }

    func update(jobID: UInt64, clock: UInt64) { state.withLock { $0 = (jobID, clock) } }

    func stop() {
        if !stopping.exchange(true, ordering: .acquiringAndReleasing) { finished.wait() }
    }

    deinit { stop() }
}

#if canImport(Glibc)
import Glibc
#endif
