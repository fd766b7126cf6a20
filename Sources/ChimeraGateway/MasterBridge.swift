public import ChimeraCluster
import Dispatch
import NIOCore
import NIOPosix
import Synchronization
import ZeroMQ

/// A small pool of threads, each owning one `MasterClient` (one REQ socket to the master's control
/// ROUTER), that HTTP handlers hand blocking requests to. Handlers await the result without holding a
/// thread of the cooperative pool; a timed-out socket is replaced by the client, never reused.
public final class MasterBridge: Sendable {
    private typealias Job = @Sendable (MasterClient) -> Void

    private let queue = Mutex<[Job]>([])
    private let available = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    public let endpoint: String
    public let size: Int

    public init(endpoint: String, size: Int = 4, curve: CurveClientSettings? = nil) throws {
        self.endpoint = endpoint
        self.size = max(1, size)
        let context = try Context()
        for index in 0..<self.size {
            let client = try MasterClient(endpoint: endpoint, context: context, curve: curve)
            let box = UncheckedClient(client)
            DedicatedThread.start(name: "chimera-bridge-\(index)") { [self] in
                while true {
                    available.wait()
                    if stopping.load(ordering: .acquiring) { return }
                    guard let job = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
                    job(box.client)
                }
            }
        }
    }

    deinit { shutdown() }

    /// Stops the threads (requests in flight finish first).
    public func shutdown() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for _ in 0..<size { available.signal() }
    }

    /// Runs `body` with one of the pool's clients on its thread and returns its result.
    ///
    /// A caller on an event loop (an HTTP handler) is resumed through that loop: resumed from the
    /// bridge thread, the task would be queued on whichever loop comes next, and half the time
    /// hop once more to the loop that owns the connection before it could answer.
    public func perform<T: Sendable>(_ body: @escaping @Sendable (MasterClient) throws -> T) async throws -> T {
        let origin = MultiThreadedEventLoopGroup.currentEventLoop
        return try await withCheckedThrowingContinuation { continuation in
            queue.withLock {
                $0.append { client in
                    let result = Result { try body(client) }
                    if let origin {
                        origin.execute { continuation.resume(with: result) }
                    } else {
                        continuation.resume(with: result)
                    }
                }
            }
            available.signal()
        }
    }
}

/// Moves a client into the one thread that will use it.
private final class UncheckedClient: @unchecked Sendable {
    // Handed to exactly one pool thread at creation and used only there afterwards.
    let client: MasterClient
    init(_ client: MasterClient) { self.client = client }
}
