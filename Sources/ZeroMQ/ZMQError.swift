internal import CZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// A failed libzmq call: the errno it reported and the function that failed.
public struct ZMQError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The errno value libzmq reported, as an opaque code with named cases for those callers act on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        /// Non-blocking call found nothing to do, or a send/receive timeout expired.
        public static let wouldBlock = Code(rawValue: EAGAIN)
        /// A blocking call was interrupted by a signal.
        public static let interrupted = Code(rawValue: EINTR)
        /// The context was terminated while the call was in progress.
        public static let contextTerminated = Code(rawValue: ETERM)
        /// ROUTER_MANDATORY: no peer with that routing id is connected.
        public static let hostUnreachable = Code(rawValue: EHOSTUNREACH)
        /// An argument (option value, endpoint) was not valid.
        public static let invalidArgument = Code(rawValue: EINVAL)
        /// The operation is not valid in the socket's current state (REQ/REP ordering).
        public static let wrongState = Code(rawValue: EFSM)
        /// The socket has already been closed.
        public static let notASocket = Code(rawValue: ENOTSOCK)
        /// The endpoint is already bound.
        public static let addressInUse = Code(rawValue: EADDRINUSE)

        public var description: String { String(cString: zmq_strerror(rawValue)) }
    }

    public let code: Code
    /// The libzmq function that failed, e.g. `zmq_bind`.
    public let function: String
    /// What the caller was doing, e.g. the endpoint being bound.
    public let detail: String

    public init(code: Code, function: String, detail: String = "") {
        self.code = code
        self.function = function
        self.detail = detail
    }

    /// Builds an error from `zmq_errno()`; call it right after the failing call.
    static func last(_ function: String, _ detail: String = "") -> ZMQError {
        ZMQError(code: Code(rawValue: zmq_errno()), function: function, detail: detail)
    }

    public var errno: Int32 { code.rawValue }

    public var description: String {
        detail.isEmpty
            ? "\(function) failed: \(code) (errno \(code.rawValue))"
            : "\(function) failed (\(detail)): \(code) (errno \(code.rawValue))"
    }
}

/// Throws the last libzmq error when a call returned -1.
@inline(__always)
func check(_ result: Int32, _ function: String, _ detail: @autoclosure () -> String = "") throws(ZMQError) {
    if result == -1 { throw ZMQError.last(function, detail()) }
}
