import ArgumentParser
import ChimeraCluster
import ChimeraTestSupport
import Foundation
import Testing
import Yams

@testable import chimera

/// deploy/ cannot run here (no container engine, no cluster, no systemd): check what can be checked —
/// every file parses, and every command it runs parses with this build's `chimera` flags.
@Suite("deploy/ files")
struct DeployFilesTests {
    static let deploy = repositoryRoot.appendingPathComponent("deploy")

    static func text(_ path: String) throws -> String {
        try String(contentsOf: deploy.appendingPathComponent(path), encoding: .utf8)
    }

    /// `${NAME:-default}` → default (or `fallback`), as compose would without an .env file.
    static func substituteDefaults(_ word: String) -> String {
        guard let start = word.range(of: "${"), let end = word.range(of: "}", range: start.upperBound..<word.endIndex)
        else { return word }
        let inner = word[start.upperBound..<end.lowerBound]
        let value = inner.range(of: ":-").map { String(inner[$0.upperBound...]) } ?? ""
        return substituteDefaults(word.replacingCharacters(in: start.lowerBound..<end.upperBound, with: value))
    }

    static func expectParses(_ arguments: [String], _ source: String) {
        #expect(throws: Never.self, "\(source): chimera \(arguments.joined(separator: " "))") {
            _ = try Chimera.parseAsRoot(arguments)
        }
    }

    @Test("compose: the YAML parses and every service's command is a valid chimera command")
    func compose() throws {
        let document = try #require(try Yams.load(yaml: try Self.text("container/compose.yaml")) as? [String: Any])
        let services = try #require(document["services"] as? [String: [String: Any]])
        #expect(Set(services.keys) == ["master", "worker", "server", "gateway"])
        for (name, service) in services {
            let raw: [Any] = try #require(service["command"] as? [Any], "\(name) has no command")
            let command: [String] = raw.map { Self.substituteDefaults("\($0)") }
            Self.expectParses(command, "compose \(name)")
        }
        #expect(services["worker"]?["ports"] == nil, "identical worker replicas must not pin host ports (--scale)")
    }

    @Test("Kubernetes: every manifest parses and every container's args are a valid chimera command")
    func kubernetes() throws {
        var kinds: [String] = []
        for file in ["namespace.yaml", "master.yaml", "workers.yaml", "servers.yaml", "gateway.yaml"] {
            for case let object as [String: Any] in try Yams.load_all(yaml: try Self.text("kubernetes/\(file)")) {
                let kind = try #require(object["kind"] as? String)
                kinds.append(kind)
                #expect(object["apiVersion"] is String)
                guard kind == "Deployment" || kind == "StatefulSet" else { continue }
                let spec = (object["spec"] as? [String: Any])?["template"] as? [String: Any]
                let containers = try #require((spec?["spec"] as? [String: Any])?["containers"] as? [[String: Any]])
                for container in containers {
                    let raw: [Any] = try #require(container["args"] as? [Any])
                    let args: [String] = raw.map { "\($0)" }
                    Self.expectParses(args, "kubernetes \(file)")
                }
            }
        }
        // Master and gateway as Deployments; workers and parameter servers StatefulSets (stable names)
        // with their headless Services.
        #expect(kinds.filter { $0 == "Deployment" }.count == 2)
        #expect(kinds.filter { $0 == "StatefulSet" }.count == 2)
        #expect(kinds.filter { $0 == "Service" }.count == 4)
        #expect(kinds.contains("PersistentVolumeClaim"))
    }

    @Test("systemd: each unit's ExecStart, with chimera.env's values, is a valid chimera command")
    func systemd() throws {
        var environment: [String: String] = [:]
        for line in try Self.text("systemd/chimera.env").split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2 { environment[String(parts[0])] = String(parts[1]) }
        }
        for unit in ["chimera-master.service", "chimera-worker@.service", "chimera-gateway.service"] {
            let text = try Self.text("systemd/\(unit)")
            #expect(text.contains("[Service]") && text.contains("[Install]"))
            let exec = try #require(text.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
            var words: [String] = []
            for word in exec.dropFirst("ExecStart=".count).split(separator: " ") {
                var value = String(word).replacingOccurrences(of: "%i", with: "worker-1")
                for (name, setting) in environment {
                    value = value.replacingOccurrences(of: "${\(name)}", with: setting)
                    if value == "$\(name)" { value = setting }
                }
                #expect(!value.contains("$"), "\(unit): \(word) is not set in chimera.env")
                words += value.split(separator: " ").map(String.init)
            }
            #expect(words.first == "/usr/local/bin/chimera")
            Self.expectParses(Array(words.dropFirst()), unit)
        }
    }

    @Test("the container file copies what exists; make-secrets.sh writes keys the master accepts")
    func containerAndSecrets() async throws {
        let file = try Self.text("container/Containerfile")
        for line in file.split(separator: "\n") where line.hasPrefix("COPY ") && !line.contains("--from") {
            let source = line.split(separator: " ")[1]
            #expect(
                FileManager.default.fileExists(atPath: repositoryRoot.appendingPathComponent(String(source)).path),
                "\(line)")
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "chimera-secrets-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        let script = Self.deploy.appendingPathComponent("container/make-secrets.sh").path
        let binary = try chimeraExecutable().path
        let result = try await blocking {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["bash", script, folder.path]
            process.environment = ProcessInfo.processInfo.environment.merging(["CHIMERA": binary]) { $1 }
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        #expect(result == 0)
        for name in ["master.public", "master.secret", "worker.secret", "gateway.secret", "allowed", "gateway.token"] {
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(name).path), "\(name)")
        }
        let master = try Chimera.parseAsRoot([
            "master", "--curve-keys", folder.appendingPathComponent("master").path, "--curve-allow",
            folder.appendingPathComponent("allowed").path,
        ])
        let settings = try #require(try (master as? Master)?.curve.settings())
        #expect(settings.allowedClientKeys.count == 2)
    }
}
