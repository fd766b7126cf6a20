import Dispatch
import Foundation

/// Runs blocking work (libzmq calls) on threads of its own, off Swift's cooperative pool.
///
/// The pool has one thread per core (two here); a task blocked in `zmq_msg_recv` would hold one of them
/// and can starve the very task that should send the awaited message.
public enum DedicatedThread {
    /// Starts a new thread that runs `body` and exits.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread(block: body)
        thread.name = name
        thread.stackSize = 1 << 22
        thread.start()
    }

    /// Runs `body` on a new thread and resumes the caller with its result, without blocking a pool thread.
    public static func run<T: Sendable>(
        name: String = "chimera-blocking",
        _ body: @escaping @Sendable () throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            start(name: name) {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}
