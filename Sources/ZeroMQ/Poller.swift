internal import CZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// Readiness flags for `Poller`.
public struct PollEvents: OptionSet, Sendable, Hashable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }

    public static let readable = PollEvents(rawValue: Int16(ZMQ_POLLIN))
    public static let writable = PollEvents(rawValue: Int16(ZMQ_POLLOUT))
}

/// Waits on several sockets at once (`zmq_poll`). Holds its sockets, so they outlive the poller's use.
public struct Poller {
    private var sockets: [Socket] = []
    private var items: [zmq_pollitem_t] = []

    public init() {}

    /// Adds a socket and returns its index in the results of `poll`.
    @discardableResult
    public mutating func add(_ socket: Socket, events: PollEvents = .readable) throws(ZMQError) -> Int {
        let item = zmq_pollitem_t(socket: try socket.raw(), fd: 0, events: events.rawValue, revents: 0)
        sockets.append(socket)
        items.append(item)
        return items.count - 1
    }

    public var count: Int { items.count }

    /// Waits until at least one socket is ready or the timeout passes (`nil`: wait forever).
    /// Returns the ready events per socket, in the order they were added; all empty on timeout
    /// or when a signal interrupted the wait.
    public mutating func poll(timeoutMilliseconds: Int? = nil) throws(ZMQError) -> [PollEvents] {
        let timeout = timeoutMilliseconds.map { CLong($0) } ?? -1
        let count = Int32(items.count)
        let result = items.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, count, timeout) }
        if result == -1 {
            let error = ZMQError.last("zmq_poll")
            if error.code == .interrupted { return Array(repeating: [], count: items.count) }
            throw error
        }
        return items.map { PollEvents(rawValue: $0.revents) }
    }
}
