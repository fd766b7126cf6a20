internal import CZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// Socket options with the C widths libzmq expects (C `int` options are `Int32`, 64-bit ones `Int64`:
/// passing a Swift `Int` to an `int` option fails with EINVAL).
extension Socket {
    // MARK: Lifecycle and flow control

    /// How long unsent messages are kept after `close()`, in milliseconds (-1: forever, 0: drop).
    public func setLinger(milliseconds: Int32) throws(ZMQError) {
        try setInt32(ZMQ_LINGER, milliseconds, "ZMQ_LINGER")
    }

    /// Outgoing queue limit in messages (0: unlimited). PUB drops and other types block beyond it.
    public func setSendHighWaterMark(_ messages: Int32) throws(ZMQError) {
        try setInt32(ZMQ_SNDHWM, messages, "ZMQ_SNDHWM")
    }

    /// Incoming queue limit in messages (0: unlimited).
    public func setReceiveHighWaterMark(_ messages: Int32) throws(ZMQError) {
        try setInt32(ZMQ_RCVHWM, messages, "ZMQ_RCVHWM")
    }

    /// How long a send may block, in milliseconds (-1: forever, 0: never).
    public func setSendTimeout(milliseconds: Int32) throws(ZMQError) {
        try setInt32(ZMQ_SNDTIMEO, milliseconds, "ZMQ_SNDTIMEO")
    }

    /// How long a receive may block before returning `nil`, in milliseconds (-1: forever).
    public func setReceiveTimeout(milliseconds: Int32) throws(ZMQError) {
        try setInt32(ZMQ_RCVTIMEO, milliseconds, "ZMQ_RCVTIMEO")
    }

    /// Queue messages only onto completed connections (sends block until a peer is connected).
    public func setImmediate(_ on: Bool) throws(ZMQError) {
        try setInt32(ZMQ_IMMEDIATE, on ? 1 : 0, "ZMQ_IMMEDIATE")
    }

    /// Initial reconnect interval in milliseconds.
    public func setReconnectInterval(milliseconds: Int32) throws(ZMQError) {
        try setInt32(ZMQ_RECONNECT_IVL, milliseconds, "ZMQ_RECONNECT_IVL")
    }

    /// Largest inbound frame accepted, in bytes; a peer sending more is disconnected (-1: no limit).
    public func setMaxMessageSize(bytes: Int64) throws(ZMQError) {
        try setInt64(ZMQ_MAXMSGSIZE, bytes, "ZMQ_MAXMSGSIZE")
    }

    // MARK: ROUTER and identity

    /// Makes a ROUTER fail with `.hostUnreachable` instead of silently dropping unroutable messages.
    public func setRouterMandatory(_ on: Bool) throws(ZMQError) {
        try setInt32(ZMQ_ROUTER_MANDATORY, on ? 1 : 0, "ZMQ_ROUTER_MANDATORY")
    }

    /// The identity a ROUTER peer sees for this socket (1–255 bytes, not starting with 0); set before connecting.
    public func setRoutingID(_ id: some Collection<UInt8>) throws(ZMQError) {
        try setBytes(ZMQ_ROUTING_ID, Array(id), "ZMQ_ROUTING_ID")
    }

    public func routingID() throws(ZMQError) -> [UInt8] {
        try bytesOption(ZMQ_ROUTING_ID, "ZMQ_ROUTING_ID", capacity: 256)
    }

    // MARK: Heartbeats (ZMTP 3.1 PING/PONG)

    /// Sends a PING every `interval` ms and drops the connection when nothing comes back within
    /// `timeout` ms; `ttl` asks the peer to drop it after that long without traffic.
    public func setHeartbeat(intervalMilliseconds: Int32, timeoutMilliseconds: Int32, ttlMilliseconds: Int32 = 0)
        throws(ZMQError)
    {
        try setInt32(ZMQ_HEARTBEAT_IVL, intervalMilliseconds, "ZMQ_HEARTBEAT_IVL")
        try setInt32(ZMQ_HEARTBEAT_TIMEOUT, timeoutMilliseconds, "ZMQ_HEARTBEAT_TIMEOUT")
        if ttlMilliseconds > 0 {
            try setInt32(ZMQ_HEARTBEAT_TTL, ttlMilliseconds, "ZMQ_HEARTBEAT_TTL")
        }
    }

    // MARK: PUB/SUB

    /// Subscribes a SUB socket to messages whose first frame starts with `prefix` (empty: everything).
    public func subscribe(prefix: some Collection<UInt8> = [UInt8]()) throws(ZMQError) {
        try setBytes(ZMQ_SUBSCRIBE, Array(prefix), "ZMQ_SUBSCRIBE")
    }

    public func subscribe(topic: String) throws(ZMQError) {
        try subscribe(prefix: Array(topic.utf8))
    }

    public func unsubscribe(prefix: some Collection<UInt8>) throws(ZMQError) {
        try setBytes(ZMQ_UNSUBSCRIBE, Array(prefix), "ZMQ_UNSUBSCRIBE")
    }

    // MARK: CURVE security

    /// Makes this socket a CURVE server with the given Z85 secret key. Clients are then checked by the
    /// context's ZAP handler (`CurveAuthenticator`), if one is running.
    public func setCurveServer(secretKey: String) throws(ZMQError) {
        try setInt32(ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER")
        try setZ85Key(ZMQ_CURVE_SECRETKEY, secretKey, "ZMQ_CURVE_SECRETKEY")
    }

    /// Makes this socket a CURVE client of the server whose public key is `serverPublicKey` (Z85).
    public func setCurveClient(serverPublicKey: String, keyPair: CurveKeyPair) throws(ZMQError) {
        try setZ85Key(ZMQ_CURVE_SERVERKEY, serverPublicKey, "ZMQ_CURVE_SERVERKEY")
        try setZ85Key(ZMQ_CURVE_PUBLICKEY, keyPair.publicKey, "ZMQ_CURVE_PUBLICKEY")
        try setZ85Key(ZMQ_CURVE_SECRETKEY, keyPair.secretKey, "ZMQ_CURVE_SECRETKEY")
    }

    /// The ZAP domain passed to the authenticator for connections to this socket.
    public func setZAPDomain(_ domain: String) throws(ZMQError) {
        try setBytes(ZMQ_ZAP_DOMAIN, Array(domain.utf8), "ZMQ_ZAP_DOMAIN")
    }

    // MARK: Raw accessors

    func setInt32(_ option: Int32, _ value: Int32, _ name: String) throws(ZMQError) {
        var value = value
        let socket = try raw()
        try check(zmq_setsockopt(socket, option, &value, MemoryLayout<Int32>.size), "zmq_setsockopt", name)
    }

    func setInt64(_ option: Int32, _ value: Int64, _ name: String) throws(ZMQError) {
        var value = value
        let socket = try raw()
        try check(zmq_setsockopt(socket, option, &value, MemoryLayout<Int64>.size), "zmq_setsockopt", name)
    }

    func setBytes(_ option: Int32, _ value: [UInt8], _ name: String) throws(ZMQError) {
        let socket = try raw()
        let result = value.withUnsafeBytes { zmq_setsockopt(socket, option, $0.baseAddress, $0.count) }
        try check(result, "zmq_setsockopt", name)
    }

    func setZ85Key(_ option: Int32, _ key: String, _ name: String) throws(ZMQError) {
        // libzmq takes a 40-character Z85 key when the length is 40 (it adds the NUL itself).
        guard key.utf8.count == 40 else {
            throw ZMQError(
                code: .invalidArgument, function: "zmq_setsockopt", detail: "\(name): Z85 key must be 40 characters")
        }
        try setBytes(option, Array(key.utf8), name)
    }

    func int32Option(_ option: Int32, _ name: String) throws(ZMQError) -> Int32 {
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        let socket = try raw()
        try check(zmq_getsockopt(socket, option, &value, &size), "zmq_getsockopt", name)
        return value
    }

    func bytesOption(_ option: Int32, _ name: String, capacity: Int) throws(ZMQError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: capacity)
        var size = capacity
        let socket = try raw()
        let result = buffer.withUnsafeMutableBytes { zmq_getsockopt(socket, option, $0.baseAddress, &size) }
        try check(result, "zmq_getsockopt", name)
        return Array(buffer.prefix(size))
    }

    func stringOption(_ option: Int32, _ name: String) throws(ZMQError) -> String {
        let bytes = try bytesOption(option, name, capacity: 1024)
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}
