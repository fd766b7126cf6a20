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

    public init(context: Context, endpoint: String, curve: CurveClientSettings? = nil) {
        self.context = context
        self.endpoint = endpoint
        self.curve = curve
    }

    /// Sends `message` and returns the decoded reply, or nil when none came within the timeout.
    public func request(_ message: WireMessage, timeoutMilliseconds: Int32) throws -> WireMessage? {
        let frames = try request(timeoutMilliseconds: timeoutMilliseconds) { requestID in
            var message = message
            message.control.requestID = requestID
            return try WireCodec.encode(message)
        }
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
    public func request(timeoutMilliseconds: Int32, write: (Socket, UInt64) throws -> Void) throws -> [Frame]? {
        let socket = try currentSocket()
        let requestID = nextRequestID
        nextRequestID += 1
        try write(socket, requestID)
        return try receiveReply(timeoutMilliseconds: timeoutMilliseconds)
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
    public func receiveReply(timeoutMilliseconds: Int32) throws -> [Frame]? {
        let socket = try currentSocket()
        if timeoutMilliseconds != receiveTimeout {
            try socket.setReceiveTimeout(milliseconds: timeoutMilliseconds)
            receiveTimeout = timeoutMilliseconds
        }
        // Received into the last reply's frames when nothing holds them any more: a worker's round
        // then allocates no frame objects.
        guard try socket.receiveMultipart(into: &received) else {
            socket.close()
            self.socket = nil
            return nil
        }
        return received
    }

    private func currentSocket() throws -> Socket {
        if let socket { return socket }
        let fresh = try context.socket(.req)
        try fresh.setLinger(milliseconds: 0)
        try fresh.setReconnectInterval(milliseconds: 100)
        try curve?.apply(to: fresh)
        try fresh.connect(endpoint)
        socket = fresh
        receiveTimeout = nil
        return fresh
    }
}
