public import ChimeraCluster
import Dispatch
import NIOCore
import NIOPosix
import Synchronization
public import ZeroMQ

/// A small pool of threads, each owning one `MasterClient` (one REQ socket to the master's control
/// ROUTER), that HTTP handlers hand blocking requests to. Handlers await the result without holding a
/// thread of the cooperative pool; a timed-out socket is replaced by the client, never reused.
public final class MasterBridge: Sendable {
    private typealias Job = @Sendable (MasterClient) -> Void

    /// One client and the thread that owns it between requests.
    private final class Slot: @unchecked Sendable {
        let client: MasterClient
        let wake = DispatchSemaphore(value: 0)
        // Set by whoever took the slot from `idle`, before `wake` is signalled; read by its thread.
        var job: Job?

        init(_ client: MasterClient) { self.client = client }
    }

    /// Slots waiting for work, and work waiting for a slot: under one lock, so a slot going idle
    /// never misses a job queued at that moment.
    private let state = Mutex<(idle: [Slot], queue: [Job])>(([], []))
    private let stopping = Atomic<Bool>(false)
    private let slots: [Slot]
    public let endpoint: String
    public let size: Int
    /// Watches the master for every client: requests end as soon as it is gone, not at their timeout.
    public let probe: MasterProbe

    /// `context`: the one of an `inproc://` endpoint's master (an embedded gateway); else a new one.
    public init(endpoint: String, size: Int = 4, curve: CurveClientSettings? = nil, context: Context? = nil) throws {
        self.endpoint = endpoint
        self.size = max(1, size)
        let context = try context ?? Context()
        let probe = MasterProbe(endpoint: endpoint, context: context, curve: curve)
        self.probe = probe
        slots = try (0..<self.size).map { _ in
            Slot(try MasterClient(endpoint: endpoint, context: context, curve: curve, probe: probe))
        }
        state.withLock { $0.idle = slots }
        for (index, slot) in slots.enumerated() {
            DedicatedThread.start(name: "chimera-bridge-\(index)") { [self] in serve(slot) }
        }
    }

    deinit { shutdown() }

    /// Stops the threads (requests in flight finish first).
    public func shutdown() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        probe.stop()
        for slot in slots { slot.wake.signal() }
    }

    /// Runs `body` with one of the pool's clients on its thread and returns its result.
    public func perform<T: Sendable>(_ body: @escaping @Sendable (MasterClient) throws -> T) async throws -> T {
        let origin = MultiThreadedEventLoopGroup.currentEventLoop
        return try await withCheckedThrowingContinuation { continuation in
            let job: Job = { client in Self.resume(continuation, with: Result { try body(client) }, on: origin) }
            if let slot = takeIdleSlot(orQueue: job) { start(job, on: slot) }
        }
    }

    /// Like `perform`, but `send` runs here, on the caller's thread, when a client is free: the
    /// request is on its way while the client's thread wakes up to wait for the reply (on a VM a
    /// thread woken on an idle core starts tens of microseconds later). `receive` runs on the
    /// client's thread. With every client busy both run there, in turn.
    public func perform<T: Sendable>(
        sending send: @escaping @Sendable (MasterClient) throws -> Void,
        receiving receive: @escaping @Sendable (MasterClient) throws -> T
    ) async throws -> T {
        let origin = MultiThreadedEventLoopGroup.currentEventLoop
        return try await withCheckedThrowingContinuation { continuation in
            let both: Job = { client in
                Self.resume(
                    continuation,
                    with: Result {
                        try send(client); return try receive(client)
                    }, on: origin)
            }
            guard let slot = takeIdleSlot(orQueue: both) else { return }
            do {
                // The slot is this thread's until its job is set: the socket moves with the semaphore.
                try send(slot.client)
            } catch {
                start({ _ in Self.resume(continuation, with: .failure(error), on: origin) }, on: slot)
                return
            }
            start({ client in Self.resume(continuation, with: Result { try receive(client) }, on: origin) }, on: slot)
        }
    }

    /// An idle slot, or nil after queueing `job` for the next slot that finishes.
    private func takeIdleSlot(orQueue job: @escaping Job) -> Slot? {
        state.withLock { state in
            if let slot = state.idle.popLast() { return slot }
            state.queue.append(job)
            return nil
        }
    }

    private func start(_ job: @escaping Job, on slot: Slot) {
        slot.job = job
        slot.wake.signal()
    }

    private func serve(_ slot: Slot) {
        while true {
            slot.wake.wait()
            if stopping.load(ordering: .acquiring) { return }
            var next = slot.job
            slot.job = nil
            while let job = next {
                job(slot.client)
                next = state.withLock { state in
                    if state.queue.isEmpty {
                        state.idle.append(slot)
                        return nil
                    }
                    return state.queue.removeFirst()
                }
            }
        }
    }

    /// A caller on an event loop (an HTTP handler) is resumed through that loop: resumed from the
    /// bridge thread, the task would be queued on whichever loop comes next, and half the time
    /// hop once more to the loop that owns the connection before it could answer.
    private static func resume<T: Sendable>(
        _ continuation: CheckedContinuation<T, any Error>, with result: Result<T, any Error>,
        on origin: (any EventLoop)?
    ) {
        if let origin {
            origin.execute { continuation.resume(with: result) }
        } else {
            continuation.resume(with: result)
        }
    }
}
