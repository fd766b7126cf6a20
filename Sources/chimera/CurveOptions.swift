import ArgumentParser
import ChimeraCluster
import Foundation
import ZeroMQ

/// CURVE flags of processes that connect to a master (worker, gateway, fit, predict, status).
struct CurveClientOptions: ParsableArguments {
    @Option(help: "The master's CURVE public key (a file or the 40-character key). Needs --curve-keys.")
    var curveServerKey: String?
    @Option(help: "Our CURVE key pair: PREFIX.secret as written by `chimera keys --output PREFIX`.")
    var curveKeys: String?

    func settings() throws -> CurveClientSettings? {
        switch (curveServerKey, curveKeys) {
        case (nil, nil): return nil
        case (let server?, let prefix?):
            return CurveClientSettings(
                serverPublicKey: try CurveKeyPair.readKey(server), keyPair: try CurveKeyPair.load(prefix: prefix))
        default: throw CommandError("--curve-server-key and --curve-keys go together")
        }
    }
}

/// CURVE flags of the master.
struct CurveServerOptions: ParsableArguments {
    @Option(help: "Our CURVE key pair (PREFIX.secret): every socket of the master then requires CURVE.")
    var curveKeys: String?
    @Option(
        help: "Public keys to admit as workers and clients: files (one key per line) or 40-character keys; repeatable.")
    var curveAllow: [String] = []
    @Option(help: "Public keys to admit as workers only (they cannot fit, predict or cancel); repeatable.")
    var curveAllowWorkers: [String] = []
    @Option(help: "Public keys to admit as clients only (they cannot join training); repeatable.")
    var curveAllowClients: [String] = []
    @Option(help: "Public keys to admit as parameter servers only (chimera server); repeatable.")
    var curveAllowServers: [String] = []

    func settings() throws -> CurveServerSettings? {
        guard let curveKeys else {
            if !(curveAllow + curveAllowWorkers + curveAllowClients + curveAllowServers).isEmpty {
                throw CommandError(
                    "--curve-allow, --curve-allow-workers, --curve-allow-clients and --curve-allow-servers need --curve-keys"
                )
            }
            return nil
        }
        let keys = Self.keys
        let settings = CurveServerSettings(
            keyPair: try CurveKeyPair.load(prefix: curveKeys), allowedClientKeys: try keys(curveAllow, "--curve-allow"),
            workerKeys: try keys(curveAllowWorkers, "--curve-allow-workers"),
            clientKeys: try keys(curveAllowClients, "--curve-allow-clients"),
            serverKeys: try keys(curveAllowServers, "--curve-allow-servers"))
        guard !settings.roles.isEmpty else {
            throw CommandError(
                "--curve-keys needs at least one --curve-allow, --curve-allow-workers or --curve-allow-clients key")
        }
        return settings
    }
}

extension CurveServerOptions {
    /// The public keys of allow-list entries: 40-character keys, or files of keys (one per line).
    static func keys(_ entries: [String], _ flag: String) throws -> Set<String> {
        var allowed = Set<String>()
        for entry in entries {
            if entry.utf8.count == 40 {
                allowed.insert(entry)
            } else {
                guard let text = try? String(contentsOfFile: entry, encoding: .utf8) else {
                    throw CommandError("cannot read \(flag) \(entry)")
                }
                allowed.formUnion(CurveKeyPair.keys(in: text))
            }
        }
        return allowed
    }
}
