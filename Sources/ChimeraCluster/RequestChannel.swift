public import ChimeraWire
public import ZeroMQ

/// Requests to one endpoint over a REQ socket, one at a time, each with a timeout.
///
/// A REQ socket whose reply did not come cannot send again, so on a timeout the socket is closed and
/// the next request opens a fresh one (the zguide's "lazy pirate"). Request ids count up per channel.
public final class RequestChannel {
    public let endpoint: String
    private let context: Context
    private var socket: Socket?
    private var nextRequestID: UInt64 = 1
    private var received: [Frame] = []
    /// The current socket's receive timeout (set only when it changes).
    private var receiveTimeout: Int32?

    private let curve: CurveClientSettings?
    /// With CURVE: the socket's handshake events, to tell a refused key from silence.
    private var monitor: SocketMonitor?
    /// The last wait that went unanswered saw the server refuse our CURVE key (ZAP said no).
    public private(set) var handshakeRefused = false

    public init(context: Context, endpoint: String, curve: CurveClientSettings? = nil) {
        self.context = context
        self.endpoint = endpoint
        self.curve = curve
    }

    /// Sends `message` and returns the decoded reply, or nil when none came within the timeout.
    public func request(_ message: WireMessage, timeoutMilliseconds: Int32, abandon: (() -> Bool)? = nil) throws
        -> WireMessage?
    {
        try send { requestID in
            var message = message
            message.control.requestID = requestID
            return try WireCodec.encode(message)
        }
        let frames = try receiveReply(timeoutMilliseconds: timeoutMilliseconds, abandon: abandon)
        return try frames.map { try WireCodec.decode($0) }
    }

    /// Sends the frames `encode` makes for the next request id and returns the reply's frames
    /// undecoded (for the round codec), or nil when none came within the timeout.
    public func request(timeoutMilliseconds: Int32, encode: (UInt64) throws -> [Frame]) throws -> [Frame]? {
        try send(encode: encode)
        return try receiveReply(timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Like `request(timeoutMilliseconds:encode:)`, but `write` sends the request's frames itself on
    /// the socket (the round codec writes straight from the update, with no frame objects).
    public func request(
        timeoutMilliseconds: Int32, abandon: (() -> Bool)? = nil, write: (Socket, UInt64) throws -> Void
    ) throws -> [Frame]? {
        let socket = try currentSocket()
        let requestID = nextRequestID
        nextRequestID += 1
        try write(socket, requestID)
        return try receiveReply(timeoutMilliseconds: timeoutMilliseconds, abandon: abandon)
    }

    /// Sends the frames `encode` makes for the next request id without waiting for the reply;
    /// `receiveReply` must come next (possibly on another thread, after a memory barrier: a ZeroMQ
    /// socket may move between threads, not be used by two at once).
    public func send(encode: (UInt64) throws -> [Frame]) throws {
        let socket = try currentSocket()
        let requestID = nextRequestID
        nextRequestID += 1
        try socket.send(try encode(requestID))
    }

    /// The reply to what `send` sent, or nil when none came within the timeout (the socket is then
    /// closed; the next request opens a fresh one).
    ///
    /// With `abandon`, the wait is cut into slices of `abandonCheckMilliseconds` and given up (as a
    /// timeout) as soon as `abandon()` says so: a long wait stays responsive to shutdown and to news
    /// that the master is gone. A reply that is already there costs no more than without it.
    public func receiveReply(timeoutMilliseconds: Int32, abandon: (() -> Bool)? = nil) throws -> [Frame]? {
        let socket = try currentSocket()
        let slice = abandon == nil ? timeoutMilliseconds : min(timeoutMilliseconds, Self.abandonCheckMilliseconds)
        if slice != receiveTimeout {
            try socket.setReceiveTimeout(milliseconds: slice)
            receiveTimeout = slice
        }
        var waited: Int32 = 0
        // Received into the last reply's frames when nothing holds them any more: a worker's round
        // then allocates no frame objects.
        while try !socket.receiveMultipart(into: &received) {
            waited += slice
            if waited >= timeoutMilliseconds || abandon?() == true {
                if let events = monitor?.drain() { handshakeRefused = events.contains(.handshakeFailedAuthentication) }
                monitor = nil
                socket.close()
                self.socket = nil
                return nil
            }
        }
        handshakeRefused = false
        return received
    }

    /// How often a wait with an `abandon` condition looks at it.
    public static let abandonCheckMilliseconds: Int32 = 100

    private func currentSocket() throws -> Socket {
        if let socket { return socket }
        let fresh = try context.socket(.req)
        try fresh.setLinger(milliseconds: 0)
        try fresh.setReconnectInterval(milliseconds: 100)
        try curve?.apply(to: fresh)
        if curve != nil {
            monitor = try SocketMonitor(fresh, events: [.handshakeFailedAuthentication, .handshakeSucceeded])
        }
        try fresh.connect(endpoint)
        socket = fresh
        receiveTimeout = nil
        return fresh
    }
}
