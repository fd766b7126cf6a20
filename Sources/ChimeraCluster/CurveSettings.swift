import Foundation
public import ZeroMQ

/// CURVE settings of a client socket (worker, gateway, CLI): the master's public key and our own pair.
public struct CurveClientSettings: Sendable {
    public var serverPublicKey: String
    public var keyPair: CurveKeyPair

    public init(serverPublicKey: String, keyPair: CurveKeyPair) {
        self.serverPublicKey = serverPublicKey
        self.keyPair = keyPair
    }

    public func apply(to socket: Socket) throws {
        try socket.setCurveClient(serverPublicKey: serverPublicKey, keyPair: keyPair)
    }
}

/// CURVE settings of the master: its key pair and the public keys it admits, by role.
public struct CurveServerSettings: Sendable {
    public var keyPair: CurveKeyPair
    /// Keys that may act as workers and as clients.
    public var allowedClientKeys: Set<String>
    /// Keys that may only register and train as workers (no fits, predictions or cancels).
    public var workerKeys: Set<String>
    /// Keys that may only send client requests (fit, predict, status, cancel), never join training.
    public var clientKeys: Set<String>
    /// Keys that may only act as parameter servers (`chimera server`): never train, fit or predict.
    public var serverKeys: Set<String>

    public init(
        keyPair: CurveKeyPair, allowedClientKeys: Set<String>, workerKeys: Set<String> = [],
        clientKeys: Set<String> = [], serverKeys: Set<String> = []
    ) {
        self.keyPair = keyPair
        self.allowedClientKeys = allowedClientKeys
        self.workerKeys = workerKeys
        self.clientKeys = clientKeys
        self.serverKeys = serverKeys
    }

    /// Every admitted key and its role ("worker", "client", "server" or "any"; a key in two role lists is "any").
    public var roles: [String: String] {
        var roles: [String: String] = [:]
        for key in workerKeys { roles[key] = "worker" }
        for key in clientKeys { roles[key] = roles[key] == nil ? "client" : "any" }
        for key in serverKeys { roles[key] = roles[key] == nil ? "server" : "any" }
        for key in allowedClientKeys { roles[key] = "any" }
        return roles
    }
}

/// What a peer may do, from the ZAP handler's "User-Id" ("ROLE:KEY"); without CURVE every peer is `.any`.
public enum PeerRole: Sendable, Equatable {
    case worker, client, server, any

    init(userID: String?) {
        switch userID?.split(separator: ":", maxSplits: 1).first {
        case "worker": self = .worker
        case "client": self = .client
        case "server": self = .server
        default: self = .any
        }
    }

    var mayTrain: Bool { self == .worker || self == .any }
    var mayCommand: Bool { self == .client || self == .any }
    /// Hold a range of a sharded fit's weights (a parameter server).
    var mayServe: Bool { self == .server || self == .any }
}

extension CurveKeyPair {
    /// Reads `PREFIX.secret` (written by `chimera keys --output PREFIX`) and derives the public key.
    public static func load(prefix: String) throws -> CurveKeyPair {
        let secret = try readKey(prefix + ".secret")
        return CurveKeyPair(publicKey: try CurveKeyPair.publicKey(forSecretKey: secret), secretKey: secret)
    }

    /// A public key from a file (first non-comment line) or given inline as 40 Z85 characters.
    public static func readKey(_ fileOrKey: String) throws -> String {
        if fileOrKey.utf8.count == 40, !FileManager.default.fileExists(atPath: fileOrKey) { return fileOrKey }
        guard let text = try? String(contentsOfFile: fileOrKey, encoding: .utf8) else {
            throw ClusterError("cannot read the key file \(fileOrKey)")
        }
        guard let key = keys(in: text).first else { throw ClusterError("\(fileOrKey) holds no Z85 key") }
        return key
    }

    /// Every Z85 key in a text, one per line. Other lines (comments, blank lines) are skipped: Z85 has no
    /// space, so a comment such as `# worker 1` can never be mistaken for a key — but a key may contain
    /// or even begin with `#`.
    public static func keys(in text: String) -> [String] {
        let alphabet = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")
        return text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.count == 40 && $0.allSatisfy(alphabet.contains) }
    }
}
