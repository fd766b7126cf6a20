internal import CZeroMQ

/// A libzmq context: the I/O threads and the registry of sockets.
///
/// libzmq documents the context as thread-safe, which is what makes `@unchecked Sendable` honest here.
/// Every `Socket` holds a strong reference to its context, so `zmq_ctx_term` (which blocks until every
/// socket is closed) only runs after the last socket is gone.
public final class Context: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// - Parameter ioThreads: libzmq background I/O threads; one is enough below ~1 GB/s.
    public init(ioThreads: Int32 = 1) throws(ZMQError) {
        guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        self.handle = handle
        if ioThreads != 1 {
            try check(zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads), "zmq_ctx_set", "ZMQ_IO_THREADS")
        }
    }

    deinit {
        // Sockets keep the context alive, so none is open now; retry on EINTR as libzmq asks.
        while zmq_ctx_term(handle) == -1 && zmq_errno() == EINTR {}
    }

    /// Creates a socket owned by the caller; use it from one thread at a time.
    public func socket(_ type: SocketType) throws(ZMQError) -> Socket {
        try Socket(context: self, type: type)
    }

    /// The linked libzmq version, e.g. (4, 3, 4).
    public static var version: (major: Int32, minor: Int32, patch: Int32) {
        var major: Int32 = 0
        var minor: Int32 = 0
        var patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (major, minor, patch)
    }

    /// Whether libzmq was built with a capability such as "curve" or "ipc".
    public static func has(_ capability: String) -> Bool {
        zmq_has(capability) == 1
    }
}
