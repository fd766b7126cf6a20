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
            return CurveClientSettings(serverPublicKey: try CurveKeyPair.readKey(server), keyPair: try CurveKeyPair.load(prefix: prefix))
        default: throw ValidationError("--curve-server-key and --curve-keys go together")
        }
    }
}

/// CURVE flags of the master.
struct CurveServerOptions: ParsableArguments {
    @Option(help: "Our CURVE key pair (PREFIX.secret): every socket of the master then requires CURVE.")
    var curveKeys: String?
    @Option(help: "Client public keys to admit: files (one key per line) or 40-character keys; repeatable.")
    var curveAllow: [String] = []

    func settings() throws -> CurveServerSettings? {
        guard let curveKeys else {
            if !curveAllow.isEmpty { throw ValidationError("--curve-allow needs --curve-keys") }
            return nil
        }
        var allowed = Set<String>()
        for entry in curveAllow {
            if entry.utf8.count == 40 {
                allowed.insert(entry)
            } else {
                guard let text = try? String(contentsOfFile: entry, encoding: .utf8) else {
                    throw ValidationError("cannot read --curve-allow \(entry)")
                }
                allowed.formUnion(CurveKeyPair.keys(in: text))
            }
        }
        guard !allowed.isEmpty else { throw ValidationError("--curve-keys needs at least one --curve-allow key") }
        return CurveServerSettings(keyPair: try CurveKeyPair.load(prefix: curveKeys), allowedClientKeys: allowed)
    }
}
