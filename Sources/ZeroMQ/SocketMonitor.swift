internal import CZeroMQ
import Synchronization

/// The connection events of one socket (`zmq_socket_monitor`), read without blocking from the
/// thread that owns the socket. Used to tell "the server refused our CURVE key" (a failed handshake)
/// from "nobody answers" — a REQ socket alone sees both as silence.
public final class SocketMonitor {
    public struct Events: OptionSet, Sendable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let connected = Events(rawValue: UInt16(ZMQ_EVENT_CONNECTED))
        public static let disconnected = Events(rawValue: UInt16(ZMQ_EVENT_DISCONNECTED))
        public static let handshakeSucceeded = Events(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_SUCCEEDED))
        public static let handshakeFailedAuthentication = Events(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH))
        public static let handshakeFailedProtocol = Events(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL))
        public static let handshakeFailed = Events(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL))
    }

    private let pair: Socket
    private static let counter = Atomic<Int>(0)

    /// Starts monitoring `socket` for `events`. Create it before the socket connects.
    public init(_ socket: Socket, events: Events) throws(ZMQError) {
        let endpoint = "inproc://chimera-monitor-\(Self.counter.add(1, ordering: .relaxed).newValue)"
        try check(
            zmq_socket_monitor(try socket.raw(), endpoint, Int32(events.rawValue)), "zmq_socket_monitor", endpoint)
        pair = try socket.context.socket(.pair)
        try pair.setLinger(milliseconds: 0)
        try pair.connect(endpoint)
    }

    /// The events that happened since the last call (none waited for).
    public func drain() -> Events {
        var seen: Events = []
        // Each event is two frames: 16-bit event and 32-bit value, then the endpoint.
        while let frames = try? pair.receiveMultipart(dontWait: true), let first = frames.first, first.count >= 2 {
            let event = first.withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) }
            seen.insert(Events(rawValue: UInt16(littleEndian: event)))
        }
        return seen
    }

    deinit { pair.close() }
}
