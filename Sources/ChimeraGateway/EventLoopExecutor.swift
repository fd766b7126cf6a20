import NIOCore
import NIOPosix

/// Makes NIO's event loops Swift concurrency's global executor, so an HTTP handler runs on the loop
/// that read its request instead of hopping to the cooperative pool and back (two thread wake-ups per
/// request). Call once, from the main thread, before serving; the gateway's
/// handlers never block (calls to the master wait in `MasterBridge`'s own threads).
/// Returns false when the hook is not available.
@discardableResult
public func runConcurrencyOnEventLoops() -> Bool {
    NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
}
