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

    private let curve: CurveClientSettings?

    public init(context: Context, endpoint: String, curve: CurveClientSettings? = nil) {
        self.context = context
        self.endpoint = endpoint
        self.curve = curve
    }

    /// Sends `message` and returns the decoded reply, or nil when none came within the timeout.
    public func request(_ message: WireMessage, timeoutMilliseconds: Int32) throws -> WireMessage? {
        let socket = try currentSocket()
        var message = message
        message.control.requestID = nextRequestID
        nextRequestID += 1
        try socket.setReceiveTimeout(milliseconds: timeoutMilliseconds)
        try socket.send(WireCodec.encode(message))
        guard let frames = try socket.receiveMultipart() else {
            socket.close()
            self.socket = nil
            return nil
        }
        return try WireCodec.decode(frames)
    }

    private func currentSocket() throws -> Socket {
        if let socket { return socket }
        let fresh = try context.socket(.req)
        try fresh.setLinger(milliseconds: 0)
        try fresh.setReconnectInterval(milliseconds: 100)
        try curve?.apply(to: fresh)
        try fresh.connect(endpoint)
        socket = fresh
        return fresh
    }
}
