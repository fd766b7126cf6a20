internal import CZeroMQ
import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A CURVE key pair in Z85 text form (40 characters each).
public struct CurveKeyPair: Sendable, Hashable, Codable {
    public let publicKey: String
    public let secretKey: String

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A fresh random key pair (`zmq_curve_keypair`).
    /// A fresh pair whose public key does not start with "-" (Z85 allows it, and such a key given as
    /// its own command-line argument, `--curve-allow KEY`, reads as an option).
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        repeat {
            try check(zmq_curve_keypair(&publicKey, &secretKey), "zmq_curve_keypair")
        } while publicKey[0] == CChar(UInt8(ascii: "-"))
        return CurveKeyPair(publicKey: z85String(publicKey), secretKey: z85String(secretKey))
    }

    /// The public key belonging to a Z85 secret key (`zmq_curve_public`).
    public static func publicKey(forSecretKey secret: String) throws(ZMQError) -> String {
        var publicKey = [CChar](repeating: 0, count: 41)
        try check(zmq_curve_public(&publicKey, secret), "zmq_curve_public")
        return z85String(publicKey)
    }

    /// Encodes 32 raw key bytes (as ZAP delivers them) in Z85.
    public static func z85(rawKey: [UInt8]) -> String? {
        guard rawKey.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&text, rawKey, 32) != nil else { return nil }
        return z85String(text)
    }

    private static func z85String(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A ZAP handler (RFC 27) that admits CURVE clients whose public key is in an allow-list.
///
/// libzmq asks the handler bound at `inproc://zeromq.zap.01` in the server's context about every new
/// connection to a CURVE server socket; without a handler any client that knows the server key gets in.
/// The handler runs on its own thread until `stop()` (or release). Start it before binding servers.
///
/// Each admitted key has a role; the connection's messages then carry "User-Id" = "ROLE:KEY"
/// (`Frame.metadata("User-Id")`), so the server can tell what a peer may do and who it is.
public final class CurveAuthenticator: Sendable {
    private let state: State
    private let finished: DispatchSemaphore

    /// - Parameter allowedClientKeys: Z85 public keys of the clients to admit (role "any").
    public convenience init(context: Context, allowedClientKeys: Set<String>) throws(ZMQError) {
        try self.init(context: context, roles: Dictionary(uniqueKeysWithValues: allowedClientKeys.map { ($0, "any") }))
    }

    /// - Parameter roles: Z85 public key → its role (a word without ":"), for the keys to admit.
    public init(context: Context, roles: [String: String]) throws(ZMQError) {
        let state = State(allowed: roles)
        let ready = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        self.state = state
        self.finished = finished
        DedicatedThread.start(name: "chimera-zap") {
            state.serve(context: context, ready: ready)
            finished.signal()
        }
        ready.wait()
        if let error = state.startError.withLock({ $0 }) { throw error }
    }

    deinit { stop() }

    /// Stops the handler and waits for its thread to finish. Idempotent.
    public func stop() {
        if !state.stopping.exchange(true, ordering: .acquiringAndReleasing) {
            finished.wait()
        }
    }

    /// Replaces the allow-list (every key with role "any"); connections made from now on are checked against it.
    public func allow(_ keys: Set<String>) {
        state.allowed.withLock { $0 = Dictionary(uniqueKeysWithValues: keys.map { ($0, "any") }) }
    }

    /// How many connection attempts were refused so far.
    public var deniedCount: Int { state.denied.load(ordering: .relaxed) }
    /// How many connection attempts were admitted so far.
    public var admittedCount: Int { state.admitted.load(ordering: .relaxed) }

    private final class State: Sendable {
        let allowed: Mutex<[String: String]>
        let stopping = Atomic<Bool>(false)
        let denied = Atomic<Int>(0)
        let admitted = Atomic<Int>(0)
        let startError = Mutex<ZMQError?>(nil)

        init(allowed: [String: String]) { self.allowed = Mutex(allowed) }

        func serve(context: Context, ready: DispatchSemaphore) {
            let socket: Socket
            do {
                socket = try context.socket(.rep)
                try socket.setLinger(milliseconds: 0)
                try socket.bind("inproc://zeromq.zap.01")
            } catch {
                startError.withLock { $0 = error }
                ready.signal()
                return
            }
            ready.signal()
            var poller = Poller()
            _ = try? poller.add(socket)
            while !stopping.load(ordering: .acquiring) {
                // Short polls so stop() is noticed quickly without a second control socket.
                guard let events = try? poller.poll(timeoutMilliseconds: 50), events[0].contains(.readable),
                    let request = try? socket.receiveMultipart(dontWait: true)
                else { continue }
                reply(to: request, on: socket)
            }
            socket.close()
        }

        /// Request frames: version, request id, domain, address, routing id, mechanism, credentials…
        private func reply(to request: [Frame], on socket: Socket) {
            let requestID = request.count > 1 ? request[1].bytes : []
            var admit = false
            var userID = ""
            if request.count >= 7, request[0].string == "1.0", request[5].string == "CURVE",
                let key = CurveKeyPair.z85(rawKey: request[6].bytes)
            {
                if let role = allowed.withLock({ $0[key] }) {
                    admit = true
                    userID = "\(role):\(key)"
                }
            }
            if admit {
                admitted.add(1, ordering: .relaxed)
            } else {
                denied.add(1, ordering: .relaxed)
            }
            let frames: [[UInt8]] = [
                Array("1.0".utf8), requestID, Array((admit ? "200" : "400").utf8),
                Array((admit ? "OK" : "client key not allowed").utf8), Array(userID.utf8), [],
            ]
            do {
                try socket.send(frames.map { try Frame($0) })
            } catch {
                // The REP socket is now in a bad state only if libzmq itself failed; nothing to answer.
            }
        }
    }
}
