internal import CZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// One ZeroMQ frame (a `zmq_msg_t`; several make a multipart message), owned by this object and closed when it is released.
///
/// `zmq_msg_t` must never be copied and small messages keep their payload inside the struct, so it
/// lives on the heap at a stable address. Received payloads can be read in place with
/// `withUnsafeBytes`; they are not aligned, so read multi-byte values with `loadUnaligned` or copy them.
/// Sending a message moves its content into libzmq and leaves it empty.
public final class Frame {
    let pointer: UnsafeMutablePointer<zmq_msg_t>

    /// An empty message, ready to receive into.
    public init() {
        pointer = .allocate(capacity: 1)
        zmq_msg_init(pointer)
    }

    /// A message with `count` uninitialised bytes, to be filled with `withUnsafeMutableBytes`.
    public init(count: Int) throws(ZMQError) {
        pointer = .allocate(capacity: 1)
        if zmq_msg_init_size(pointer, count) == -1 {
            let error = ZMQError.last("zmq_msg_init_size", "\(count) bytes")
            pointer.deallocate()
            throw error
        }
    }

    /// A message holding a copy of `bytes`.
    public convenience init(copying bytes: UnsafeRawBufferPointer) throws(ZMQError) {
        try self.init(count: bytes.count)
        if let base = bytes.baseAddress, bytes.count > 0 {
            memcpy(zmq_msg_data(pointer), base, bytes.count)
        }
    }

    /// A message holding a copy of `bytes`.
    public convenience init(_ bytes: some Collection<UInt8>) throws(ZMQError) {
        try self.init(count: bytes.count)
        let destination = UnsafeMutableRawBufferPointer(start: zmq_msg_data(pointer), count: bytes.count)
        destination.copyBytes(from: bytes)
    }

    /// A message holding the UTF-8 bytes of `string`.
    public convenience init(string: String) throws(ZMQError) {
        try self.init(Array(string.utf8))
    }

    /// A message that points at `bytes` without copying them.
    ///
    /// `owner` is retained until libzmq has finished with the bytes (possibly on its I/O thread, after
    /// the send returned), then released: keep the bytes valid and unchanged for as long as `owner` lives.
    public init(noCopy bytes: UnsafeRawBufferPointer, owner: AnyObject) throws(ZMQError) {
        pointer = .allocate(capacity: 1)
        let hint = Unmanaged.passRetained(owner).toOpaque()
        let data = UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(hint))
        // A C callback cannot capture: the owner travels in `hint` and is released here.
        let release: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { _, hint in
            if let hint { Unmanaged<AnyObject>.fromOpaque(hint).release() }
        }
        if zmq_msg_init_data(pointer, data, bytes.count, release, hint) == -1 {
            let error = ZMQError.last("zmq_msg_init_data", "\(bytes.count) bytes")
            Unmanaged<AnyObject>.fromOpaque(hint).release()
            pointer.deallocate()
            throw error
        }
    }

    deinit {
        zmq_msg_close(pointer)
        pointer.deallocate()
    }

    /// The payload size in bytes.
    public var count: Int { zmq_msg_size(pointer) }

    /// Whether more frames of the same multipart message follow (valid after a receive).
    public var hasMore: Bool { zmq_msg_more(pointer) == 1 }

    /// Reads the payload in place; the pointer is valid only inside `body`.
    // Inlinable: unspecialised generic calls across modules looked up type metadata at run time, a
    // visible cost on the parameter server's per-message path.
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withExtendedLifetime(self) { () throws(E) -> R in try body(UnsafeRawBufferPointer(payload)) }
    }

    /// Writes the payload in place (before sending); the pointer is valid only inside `body`.
    @inlinable
    public func withUnsafeMutableBytes<R, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try withExtendedLifetime(self) { () throws(E) -> R in try body(payload) }
    }

    /// The payload's address and size (valid while this frame lives and is not sent or received into).
    @usableFromInline
    var payload: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: zmq_msg_data(pointer), count: zmq_msg_size(pointer))
    }

    /// A copy of the payload.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// A metadata property of a received frame (`zmq_msg_gets`): "User-Id" (what the ZAP handler
    /// said of the peer), "Peer-Address", "Socket-Type"… Nil when the frame has none.
    public func metadata(_ property: String) -> String? {
        guard let value = zmq_msg_gets(pointer, property) else { return nil }
        return String(cString: value)
    }

    /// The payload decoded as UTF-8 (invalid sequences repaired).
    public var string: String { withUnsafeBytes { String(decoding: $0, as: UTF8.self) } }

    /// Whether the payload equals `other` byte for byte.
    public func contentEquals(_ other: some Collection<UInt8>) -> Bool {
        withUnsafeBytes { $0.count == other.count && $0.elementsEqual(other) }
    }

    /// Whether the payload equals `other` byte for byte (no generics: for per-message checks).
    public func contentEquals(_ other: [UInt8]) -> Bool {
        let payload = self.payload
        guard payload.count == other.count else { return false }
        guard let mine = payload.baseAddress, !other.isEmpty else { return true }
        return withExtendedLifetime(self) { other.withUnsafeBytes { memcmp(mine, $0.baseAddress!, other.count) == 0 } }
    }
}
