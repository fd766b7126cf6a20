import ChimeraCluster
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Testing
import ZeroMQ

@Suite("CURVE between master, workers and clients, end to end")
struct CurveProcessTests {
    /// A key pair per name, each secret written to FOLDER/NAME.secret (as `chimera keys` does).
    static func keys(_ names: [String]) throws -> (URL, [String: CurveKeyPair]) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "chimera-keys-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var pairs: [String: CurveKeyPair] = [:]
        for name in names {
            let pair = try CurveKeyPair.generate()
            pairs[name] = pair
            try (pair.secretKey + "\n").write(
                to: folder.appendingPathComponent("\(name).secret"), atomically: true, encoding: .utf8)
        }
        return (folder, pairs)
    }

    @Test("only workers and clients with allowed keys get in")
    func allowList() async throws {
        try await blocking {
            let (folder, pairs) = try Self.keys(["master", "worker", "client", "stranger"])
            defer { try? FileManager.default.removeItem(at: folder) }
            let prefix = { (name: String) in folder.appendingPathComponent(name).path }
            // With a gateway embedded in the master: its in-process bridge must get through CURVE too.
            let cluster = try LocalCluster(extraArguments: [
                "--curve-keys", prefix("master"), "--curve-allow", pairs["worker"]!.publicKey, "--curve-allow",
                pairs["client"]!.publicKey,
                "--http-port", "0",
            ])
            let url = try #require(
                cluster.master.nextLine(timeoutSeconds: 60)?.split(separator: "=", maxSplits: 1).last)
            cluster.clientCurve = CurveClientSettings(
                serverPublicKey: pairs["master"]!.publicKey, keyPair: pairs["client"]!)
            let data = repositoryRoot.appendingPathComponent("deploy/data/breast-cancer")
            let serverKey = ["--curve-server-key", pairs["master"]!.publicKey]
            try cluster.startWorker(
                name: "allowed", data: data.appendingPathComponent("worker-1"),
                extraArguments: serverKey + ["--curve-keys", prefix("worker")])
            try cluster.startWorker(
                name: "stranger", data: data.appendingPathComponent("worker-2"),
                extraArguments: serverKey + ["--curve-keys", prefix("stranger")])
            try cluster.startWorker(name: "plain", data: data.appendingPathComponent("worker-3"))
            try cluster.waitFor("the allowed worker") { $0.workers.filter(\.ready).count == 1 }

            var request = Chimera_V1_FitRequest()
            request.config.maxIterations = 20
            let reply = try cluster.client().fit(request, timeoutMilliseconds: 60_000)
            #expect(reply.state == .succeeded)
            #expect(reply.report.clocks.map(\.name) == ["allowed"], "only the allowed worker took part")
            // Still only one worker after the others had plenty of time to try.
            #expect(try cluster.client().status().workers.map(\.name) == ["allowed"])
            let (status, body) = try LocalClusterCommandTests.post("\(url)/v1/chimera/parameter-server/fit", nil)
            #expect(status == 200 && body == "{\"fit\":\"ok\"}", "the embedded gateway: \(status) \(body)")

            // A client without keys, or with keys that are not allowed, gets nothing through.
            let plain = try MasterClient(endpoint: cluster.controlEndpoint)
            #expect(throws: MasterClientError.self) { try plain.status(timeoutMilliseconds: 1_000) }
            let stranger = try MasterClient(
                endpoint: cluster.controlEndpoint,
                curve: CurveClientSettings(serverPublicKey: pairs["master"]!.publicKey, keyPair: pairs["stranger"]!))
            // …and is told why: its key was refused, which is not the same as a master that is down.
            do {
                _ = try stranger.status(timeoutMilliseconds: 1_000)
                Issue.record("a refused key got an answer")
            } catch MasterClientError.curveRefused {
            } catch {
                Issue.record("a refused key should be named as such, got \(error)")
            }
        }
    }

    @Test("roles: a client key cannot join training, a worker key cannot fit or cancel")
    func roles() async throws {
        try await blocking {
            let (folder, pairs) = try Self.keys(["master", "worker", "client"])
            defer { try? FileManager.default.removeItem(at: folder) }
            let prefix = { (name: String) in folder.appendingPathComponent(name).path }
            let cluster = try LocalCluster(extraArguments: [
                "--curve-keys", prefix("master"), "--curve-allow-workers", pairs["worker"]!.publicKey,
                "--curve-allow-clients", pairs["client"]!.publicKey,
            ])
            let data = repositoryRoot.appendingPathComponent("deploy/data/breast-cancer")
            let serverKey = ["--curve-server-key", pairs["master"]!.publicKey]
            try cluster.startWorker(
                name: "worker", data: data.appendingPathComponent("worker-1"),
                extraArguments: serverKey + ["--curve-keys", prefix("worker")])
            // A worker process holding the client's key is admitted by CURVE but refused as a worker.
            let impostor = try cluster.startWorker(
                name: "impostor", data: data.appendingPathComponent("worker-2"),
                extraArguments: serverKey + ["--curve-keys", prefix("client")])
            #expect(impostor.wait(timeoutSeconds: 60) != 0, "a worker with a client's key exits with the refusal")
            cluster.clientCurve = CurveClientSettings(
                serverPublicKey: pairs["master"]!.publicKey, keyPair: pairs["client"]!)
            try cluster.waitFor("the worker") { $0.workers.filter(\.ready).count == 1 }
            #expect(try cluster.client().status().workers.map(\.name) == ["worker"])

            // The worker's key may read status but not command.
            let asWorker = try MasterClient(
                endpoint: cluster.controlEndpoint,
                curve: CurveClientSettings(serverPublicKey: pairs["master"]!.publicKey, keyPair: pairs["worker"]!))
            #expect(try asWorker.status().workers.count == 1)
            var request = Chimera_V1_FitRequest()
            request.asynchronous = true
            request.config.maxIterations = 1_000_000
            do {
                _ = try asWorker.fit(request, timeoutMilliseconds: 10_000)
                Issue.record("a worker key started a fit")
            } catch MasterClientError.refused(let code, _) {
                #expect(code == .forbidden)
            }
            // The client starts a job; the worker's key cannot cancel it, the client's (any client's) can.
            let started = try cluster.client().fit(request, timeoutMilliseconds: 10_000)
            var cancel = Chimera_V1_CancelJob()
            cancel.jobID = started.jobID
            cancel.jobToken = started.jobToken
            #expect(throws: MasterClientError.self) {
                try asWorker.call(WireMessage(.cancelJob(cancel)), timeoutMilliseconds: 10_000)
            }
            #expect(try cluster.client().jobStatus(started.jobID).state == .running)
            cancel.jobToken = 0
            _ = try cluster.client().call(WireMessage(.cancelJob(cancel)), timeoutMilliseconds: 10_000)
            #expect(try cluster.client().jobStatus(started.jobID).state == .cancelled)
            #expect(try cluster.client().status().rejectedByKind["forbidden_role"] ?? 0 >= 3)
        }
    }
}
