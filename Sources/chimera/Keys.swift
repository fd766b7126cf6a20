import ArgumentParser
import Foundation
import ZeroMQ

struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a CURVE key pair (Z85) for authenticating masters, workers and gateways."
    )

    @Option(help: "Write <prefix>.public and <prefix>.secret (mode 600) instead of printing.")
    var output: String?

    func run() throws {
        let pair = try CurveKeyPair.generate()
        guard let output else {
            print("public=\(pair.publicKey)")
            print("secret=\(pair.secretKey)")
            return
        }
        try (pair.publicKey + "\n").write(toFile: output + ".public", atomically: true, encoding: .utf8)
        let secretPath = output + ".secret"
        guard
            FileManager.default.createFile(
                atPath: secretPath, contents: Data((pair.secretKey + "\n").utf8), attributes: [.posixPermissions: 0o600]
            )
        else { throw CommandError("cannot write \(secretPath)") }
        print("wrote \(output).public and \(secretPath)")
    }
}
