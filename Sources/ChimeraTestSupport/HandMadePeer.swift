public import ChimeraWire
public import ZeroMQ

/// A peer speaking the wire protocol by hand on a master's workers socket (a DEALER, so it may send
/// anything), for tests of what the master does with hostile or malformed messages.
public final class HandMadePeer {
    public let context: Context
    public let socket: Socket

    public init(endpoint: String) throws {
        context = try Context()
        socket = try testSocket(context, .dealer)
        try socket.connect(endpoint)
    }

    /// Sends raw frames (after the empty delimiter a REQ would add) and decodes the reply.
    public func exchange(_ frames: [Frame]) throws -> WireMessage? {
        try socket.send([Frame()] + frames)
        guard let reply = try socket.receiveMultipart() else { return nil }
        return try WireCodec.decode(reply.dropFirst())
    }

    public func exchange(_ message: WireMessage) throws -> WireMessage? { try exchange(try WireCodec.encode(message)) }

    /// A hello for a worker named `name` holding `rows` rows of `features` with binary labels.
    public static func hello(name: String, rows: Int, features: [String]) -> Chimera_V1_WorkerHello {
        var hello = Chimera_V1_WorkerHello()
        hello.name = name
        hello.rows = UInt64(rows)
        hello.featureNames = features
        hello.labelValues = [0, 1]
        return hello
    }
}

/// The error code of a reply, nil when it is not an Error.
public func errorCode(_ reply: WireMessage?) -> Chimera_V1_ErrorCode? {
    if case .error(let error) = reply?.body { return error.code }
    return nil
}
