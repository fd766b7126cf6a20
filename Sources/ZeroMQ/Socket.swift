internal import CZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// A ZeroMQ socket with a single owner.
///
/// libzmq sockets are not thread-safe, so `Socket` is not `Sendable`: create it on the thread that
/// uses it. It keeps its `Context` alive and is closed by `close()` or when released, whichever comes
/// first. Every call blocks the calling thread (bounded by the send/receive timeouts): run socket loops
/// on dedicated threads (`DedicatedThread`), never on Swift's cooperative pool.
public final class Socket {
    public let context: Context
    public let type: SocketType
    private var handle: UnsafeMutableRawPointer?

    init(context: Context, type: SocketType) throws(ZMQError) {
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw ZMQError.last("zmq_socket", "\(type)")
        }
        self.context = context
        self.type = type
        self.handle = handle
    }

    deinit { close() }

    /// Closes the socket now. Pending outgoing messages follow the linger setting. Idempotent.
    public func close() {
        if let handle {
            zmq_close(handle)
            self.handle = nil
        }
    }

    public var isClosed: Bool { handle == nil }

    func raw() throws(ZMQError) -> UnsafeMutableRawPointer {
        guard let handle else { throw ZMQError(code: .notASocket, function: "Socket", detail: "socket is closed") }
        return handle
    }

    // MARK: Endpoints

    /// Binds to an endpoint such as `tcp://127.0.0.1:*` and returns the endpoint actually bound
    /// (with the OS-chosen port filled in).
    @discardableResult
    public func bind(_ endpoint: String) throws(ZMQError) -> String {
        try check(zmq_bind(try raw(), endpoint), "zmq_bind", endpoint)
        return try lastEndpoint()
    }

    public func connect(_ endpoint: String) throws(ZMQError) {
        try check(zmq_connect(try raw(), endpoint), "zmq_connect", endpoint)
    }

    public func disconnect(_ endpoint: String) throws(ZMQError) {
        try check(zmq_disconnect(try raw(), endpoint), "zmq_disconnect", endpoint)
    }

    public func unbind(_ endpoint: String) throws(ZMQError) {
        try check(zmq_unbind(try raw(), endpoint), "zmq_unbind", endpoint)
    }

    /// The last endpoint bound or connected, e.g. `tcp://127.0.0.1:40321`.
    public func lastEndpoint() throws(ZMQError) -> String {
        try stringOption(ZMQ_LAST_ENDPOINT, "ZMQ_LAST_ENDPOINT")
    }

    // MARK: Sending

    /// Sends one frame; `more` marks that further frames of the same message follow.
    ///
    /// Throws `.wouldBlock` when `dontWait` is set (or the send timeout expires) and the message
    /// could not be queued; `.hostUnreachable` from a ROUTER_MANDATORY router with an unknown peer.
    public func send(_ message: Frame, more: Bool = false, dontWait: Bool = false) throws(ZMQError) {
        var flags: Int32 = 0
        if more { flags |= ZMQ_SNDMORE }
        if dontWait { flags |= ZMQ_DONTWAIT }
        let socket = try raw()
        while true {
            if zmq_msg_send(message.pointer, socket, flags) != -1 { return }
            let error = ZMQError.last("zmq_msg_send")
            if error.code != .interrupted { throw error }
        }
    }

    /// Sends the frames as one multipart message.
    public func send(_ frames: [Frame], dontWait: Bool = false) throws(ZMQError) {
        for (index, frame) in frames.enumerated() {
            try send(frame, more: index < frames.count - 1, dontWait: dontWait && index == 0)
        }
    }

    /// Sends a copy of `bytes` as one frame (`zmq_send`: no frame object, for per-message paths).
    public func send(copying bytes: UnsafeRawBufferPointer, more: Bool = false) throws(ZMQError) {
        let socket = try raw()
        let flags: Int32 = more ? ZMQ_SNDMORE : 0
        while true {
            if zmq_send(socket, bytes.baseAddress, bytes.count, flags) != -1 { return }
            let error = ZMQError.last("zmq_send")
            if error.code != .interrupted { throw error }
        }
    }

    /// Sends a copy of `bytes` as one frame.
    public func send(bytes: some Collection<UInt8>, more: Bool = false, dontWait: Bool = false) throws(ZMQError) {
        try send(Frame(bytes), more: more, dontWait: dontWait)
    }

    /// Sends the UTF-8 bytes of `string` as one frame.
    public func send(string: String, more: Bool = false, dontWait: Bool = false) throws(ZMQError) {
        try send(Frame(string: string), more: more, dontWait: dontWait)
    }

    // MARK: Receiving

    /// Receives one frame, or returns `nil` when nothing arrived before the receive timeout
    /// (or at once with `dontWait`).
    public func receive(dontWait: Bool = false) throws(ZMQError) -> Frame? {
        let message = Frame()
        let socket = try raw()
        while true {
            if zmq_msg_recv(message.pointer, socket, dontWait ? ZMQ_DONTWAIT : 0) != -1 { return message }
            let error = ZMQError.last("zmq_msg_recv")
            if error.code == .wouldBlock { return nil }
            if error.code != .interrupted { throw error }
        }
    }

    /// Receives every frame of one multipart message, or `nil` when none arrived in time.
    ///
    /// libzmq delivers multipart messages atomically, so once the first frame is here the rest are too.
    public func receiveMultipart(dontWait: Bool = false) throws(ZMQError) -> [Frame]? {
        guard let first = try receive(dontWait: dontWait) else { return nil }
        var frames = [first]
        if first.hasMore { frames.reserveCapacity(8) }
        while frames[frames.count - 1].hasMore {
            guard let next = try receive(dontWait: true) else {
                throw ZMQError(code: .wouldBlock, function: "zmq_msg_recv", detail: "multipart message cut short")
            }
            frames.append(next)
        }
        return frames
    }

    /// Receives every frame of one multipart message into `frames`, reusing its frame objects that
    /// nothing else holds (a busy loop then allocates none per message); `frames` ends up holding
    /// exactly the message's frames. False when none arrived in time.
    public func receiveMultipart(into frames: inout [Frame], dontWait: Bool = false) throws(ZMQError) -> Bool {
        let socket = try raw()
        var index = 0
        while true {
            if index == frames.count {
                frames.append(Frame())
            } else if !isKnownUniquelyReferenced(&frames[index]) {
                frames[index] = Frame()
            }
            let frame = frames[index]
            let wait = index > 0 || dontWait
            while zmq_msg_recv(frame.pointer, socket, wait ? ZMQ_DONTWAIT : 0) == -1 {
                let error = ZMQError.last("zmq_msg_recv")
                if error.code == .interrupted { continue }
                if error.code == .wouldBlock && index == 0 { return false }
                if error.code == .wouldBlock {
                    throw ZMQError(code: .wouldBlock, function: "zmq_msg_recv", detail: "multipart message cut short")
                }
                throw error
            }
            index += 1
            if !frame.hasMore { break }
        }
        if frames.count > index { frames.removeLast(frames.count - index) }
        return true
    }

    /// Whether the socket can receive (or send) right now without blocking.
    public func pendingEvents() throws(ZMQError) -> PollEvents {
        PollEvents(rawValue: Int16(truncatingIfNeeded: try int32Option(ZMQ_EVENTS, "ZMQ_EVENTS")))
    }
}
