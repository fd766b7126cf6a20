import ChimeraCluster
import ChimeraML
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Testing
import ZeroMQ

/// Sharded parameter servers through real processes: `chimera master --servers`, `chimera server`,
/// workers pushing and pulling each range over its own socket.
@Suite("Sharded parameter servers, end to end", .serialized)
struct ShardedServerProcessTests {
    static func fit(servers: UInt32?, staleness: UInt64 = 0, iterations: UInt64 = 30) -> Chimera_V1_FitRequest {
        var request = Chimera_V1_FitRequest()
        request.kind = .parameterServer
        request.config.model = .logisticRegression
        request.config.maxIterations = iterations
        request.config.eta0 = 0.3
        request.config.penalty = .l2
        request.config.alpha = 1e-3
        request.config.optimizer = "adam"
        request.config.eta0 = 0.05
        request.config.staleness = staleness
        if let servers { request.config.servers = servers }
        return request
    }

    static func model(_ cluster: LocalCluster) throws -> FittedModel {
        try FittedModel.load(from: cluster.modelDirectory.appendingPathComponent("model.json"))
    }

    @Test("BSP: the master alone and S = 1, 2, 4 servers fit the same model (to 1e-6); SSP over 2 servers learns")
    func sameModel() async throws {
        try await blocking {
            let data = try ParameterServerProcessTests.synthData(workers: 3)
            defer { try? FileManager.default.removeItem(at: data) }
            let cluster = try LocalCluster(extraArguments: ["--servers", "4"])
            for index in 1...3 {
                try cluster.startWorker(
                    name: "worker-\(index)", data: data.appendingPathComponent("worker-\(index)"))
            }
            let status = try cluster.waitFor("3 workers and 4 servers") {
                $0.workers.filter(\.ready).count == 3 && $0.servers.count == 4
            }
            #expect(status.servers.map(\.name) == ["server-0", "server-1", "server-2", "server-3"])
            let client = try cluster.client()
            let alone = try client.fit(Self.fit(servers: 0), timeoutMilliseconds: 120_000)
            #expect(alone.state == .succeeded)
            let reference = try Self.model(cluster)
            for servers: UInt32 in [1, 2, 4] {
                let reply = try client.fit(Self.fit(servers: servers), timeoutMilliseconds: 120_000)
                #expect(reply.state == .succeeded, "S = \(servers)")
                #expect(reply.report.iterations == 30)
                let sharded = try Self.model(cluster)
                #expect(sharded.weights.count == reference.weights.count)
                let scale = reference.weights.map(abs).max() ?? 1
                let difference = zip(sharded.weights, reference.weights).map { abs($0 - $1) }.max() ?? 0
                #expect(difference <= 1e-6 * max(scale, 1), "S = \(servers): weights differ by \(difference)")
                #expect(abs((sharded.finalLoss ?? 0) - (reference.finalLoss ?? 0)) <= 1e-5)
                // Adam's moments come back from the servers with the weights.
                #expect(sharded.optimizerState?.first.count == reference.weights.count)
            }
            // Unset: every registered server.
            let auto = try client.fit(Self.fit(servers: nil, staleness: 2), timeoutMilliseconds: 120_000)
            #expect(auto.state == .succeeded)
            let history = try client.jobStatus(auto.jobID, lossesAfter: 0).losses.map(\.loss)
            #expect(history.count >= 10 && history.last! < history.first!)
            // Unset with compact updates: the master holds the weights (servers take float32 only).
            var compact = Self.fit(servers: nil)
            compact.config.wireDtype = "bfloat16"
            #expect(try client.fit(compact, timeoutMilliseconds: 120_000).state == .succeeded)
            // More servers than registered: refused, naming the count.
            #expect(throws: (any Error).self) { try client.fit(Self.fit(servers: 5), timeoutMilliseconds: 30_000) }
        }
    }

    @Test(
        "a server SIGKILLed mid-fit: with checkpoints the job goes back to its checkpoint and resumes when the server returns; without, it fails naming the server and the cluster fits again on the others"
    )
    func serverDeath() async throws {
        try await blocking {
            let data = try ParameterServerProcessTests.synthData(workers: 2)
            defer { try? FileManager.default.removeItem(at: data) }
            let cluster = try LocalCluster()
            func server(_ index: Int) throws -> ChildProcess {
                try ChildProcess(
                    name: "server-\(index)",
                    arguments: ["server", "--master", cluster.workersEndpoint, "--name", "server-\(index)"],
                    prefix: "[server-\(index)]", executable: try chimeraExecutable())
            }
            var servers = [try server(0), try server(1)]
            defer { for server in servers { server.send(signal: SIGKILL) } }
            for index in 1...2 {
                try cluster.startWorker(
                    name: "worker-\(index)", data: data.appendingPathComponent("worker-\(index)"), delayMilliseconds: 20
                )
            }
            try cluster.waitFor("2 workers and 2 servers") {
                $0.workers.filter(\.ready).count == 2 && $0.servers.count == 2
            }
            let client = try cluster.client()

            // With checkpoints: the job waits for the server and goes on from its checkpoint.
            var request = Self.fit(servers: 2, iterations: 150)
            request.asynchronous = true
            request.config.checkpointEvery = 5
            let started = try client.fit(request, timeoutMilliseconds: 30_000)
            try cluster.waitFor("20 iterations") { $0.iteration >= 20 }
            servers[1].send(signal: SIGKILL)
            try cluster.waitFor("server-1 declared dead") { $0.servers.map(\.name) == ["server-0"] }
            let waiting = try client.jobStatus(started.jobID)
            #expect(waiting.state == .running, "\(waiting.error)")
            #expect(waiting.error.contains("waiting for 2 parameter servers"), "\(waiting.error)")
            // The checkpoint holds the servers' ranges from before the death.
            let checkpoint = try FittedModel.load(
                from: cluster.modelDirectory.appendingPathComponent("checkpoint.json"))
            #expect(checkpoint.iterations >= 5 && checkpoint.weights.count == 11)
            #expect(checkpoint.weights.allSatisfy(\.isFinite) && checkpoint.weights.contains { $0 != 0 })
            servers[1].wait(timeoutSeconds: 10)
            servers[1] = try server(1)
            let resumed = try ParameterServerProcessTests.waitForJob(client, started.jobID, timeoutSeconds: 120)
            #expect(resumed.state == .succeeded, "\(resumed.error)")
            #expect(resumed.iteration == 150)

            // Without checkpoints: the job fails, naming the server; the survivor carries the next fit.
            var plain = Self.fit(servers: 2, iterations: 100_000)
            plain.asynchronous = true
            let doomed = try client.fit(plain, timeoutMilliseconds: 30_000)
            try cluster.waitFor("10 iterations of job \(doomed.jobID)") {
                $0.currentJobID == doomed.jobID && $0.iteration >= 10
            }
            servers[1].send(signal: SIGKILL)
            let ended = try ParameterServerProcessTests.waitForJob(client, doomed.jobID, timeoutSeconds: 60)
            #expect(ended.state == .failed)
            #expect(ended.error.contains("parameter server server-1"), "\(ended.error)")
            try cluster.waitFor("server-1 gone") { $0.servers.map(\.name) == ["server-0"] }
            let again = try client.fit(Self.fit(servers: 1), timeoutMilliseconds: 120_000)
            #expect(again.state == .succeeded)
        }
    }

    @Test(
        "CURVE roles: a server key registers as a server only; a worker's key cannot act as a server, nor a server's as a worker"
    )
    func curveRoles() async throws {
        try await blocking {
            let (folder, pairs) = try CurveProcessTests.keys(["master", "worker", "server", "client"])
            defer { try? FileManager.default.removeItem(at: folder) }
            let prefix = { (name: String) in folder.appendingPathComponent(name).path }
            let cluster = try LocalCluster(extraArguments: [
                "--curve-keys", prefix("master"), "--curve-allow-workers", pairs["worker"]!.publicKey,
                "--curve-allow-servers", pairs["server"]!.publicKey, "--curve-allow-clients",
                pairs["client"]!.publicKey,
            ])
            cluster.clientCurve = CurveClientSettings(
                serverPublicKey: pairs["master"]!.publicKey, keyPair: pairs["client"]!)
            let master = ["--curve-server-key", pairs["master"]!.publicKey]
            func server(_ name: String, key: String) throws -> ChildProcess {
                try ChildProcess(
                    name: name,
                    arguments: ["server", "--master", cluster.workersEndpoint, "--name", name] + master + [
                        "--curve-keys", prefix(key), "--curve-allow", pairs["worker"]!.publicKey,
                    ],
                    prefix: "[\(name)]", executable: try chimeraExecutable())
            }
            let impostor = try server("impostor", key: "worker")
            let real = try server("s1", key: "server")
            defer { for process in [impostor, real] { process.send(signal: SIGKILL) } }
            let data = repositoryRoot.appendingPathComponent("deploy/data/breast-cancer")
            try cluster.startWorker(
                name: "worker", data: data.appendingPathComponent("worker-1"),
                extraArguments: master + ["--curve-keys", prefix("worker")])
            // A worker process holding a server's key is admitted by CURVE but refused as a worker.
            let workerImpostor = try cluster.startWorker(
                name: "server-key", data: data.appendingPathComponent("worker-2"),
                extraArguments: master + ["--curve-keys", prefix("server")])
            #expect(workerImpostor.wait(timeoutSeconds: 60) != 0, "a worker with a server's key exits with the refusal")
            #expect(impostor.wait(timeoutSeconds: 60) != 0, "a server with a worker's key exits with the refusal")
            let status = try cluster.waitFor("s1, the worker, and the impostor server refused") {
                $0.servers.count == 1 && $0.workers.filter(\.ready).count == 1
                    && ($0.rejectedByKind["forbidden_role"] ?? 0) >= 2
            }
            #expect(status.servers.map(\.name) == ["s1"])
            // The fit's weights go to s1 over CURVE with the server's own key.
            var request = Self.fit(servers: 1)
            request.config.maxIterations = 20
            #expect(try cluster.client().fit(request, timeoutMilliseconds: 60_000).state == .succeeded)
        }
    }

    @Test(
        "a hostile peer at a server: garbage, pushes for other jobs or sessions and a flood of pulls are refused and counted; the fit goes on"
    )
    func hostilePeer() async throws {
        try await blocking {
            let data = try ParameterServerProcessTests.synthData(workers: 2)
            defer { try? FileManager.default.removeItem(at: data) }
            let cluster = try LocalCluster(extraArguments: ["--servers", "1"])
            for index in 1...2 {
                try cluster.startWorker(
                    name: "worker-\(index)", data: data.appendingPathComponent("worker-\(index)"), delayMilliseconds: 5)
            }
            let status = try cluster.waitFor("2 workers and a server") {
                $0.workers.filter(\.ready).count == 2 && $0.servers.count == 1
            }
            let peer = try HandMadePeer(endpoint: status.servers[0].endpoint)
            // Not the protocol at all, then a push for a job the server does not hold.
            #expect(errorCode(try peer.exchange([try Frame(string: "hello")])) != nil)
            var push = Chimera_V1_GradientPush()
            push.workerID = 1
            push.jobID = 77
            push.session = 42
            let stale = WireMessage(
                .gradientPush(push), tensors: [NamedTensor("gradient", .float32([0, 0], shape: [1, 2]))])
            #expect(errorCode(try peer.exchange(stale)) == .stale)

            var request = Self.fit(servers: 1, iterations: 100_000)
            request.asynchronous = true
            let started = try cluster.client().fit(request, timeoutMilliseconds: 30_000)
            try cluster.waitFor("10 iterations") { $0.iteration >= 10 }
            // Acting as a worker of the job without its session.
            push.jobID = started.jobID
            let impostor = WireMessage(
                .gradientPush(push), tensors: [NamedTensor("gradient", .float32([0, 0], shape: [1, 2]))])
            #expect(errorCode(try peer.exchange(impostor)) == .unknownWorker)
            // A flood of pulls waiting for a job that never comes: beyond the cap the oldest are refused.
            let flood = ParameterServerNode.maxParkedPulls + 50
            for index in 0..<flood {
                var pull = Chimera_V1_WeightPull()
                pull.workerID = UInt32(1_000 + index)
                pull.jobID = started.jobID + 100
                pull.session = 7
                try peer.socket.send([Frame()] + (try WireCodec.encode(WireMessage(.weightPull(pull)))))
            }
            var limited = 0
            while limited < 50, let reply = try peer.socket.receiveMultipart() {
                if errorCode(try WireCodec.decode(reply.dropFirst())) == .limit { limited += 1 }
            }
            #expect(limited == 50)
            let during = try cluster.client().status().iteration
            try cluster.waitFor("the fit going on") { $0.iteration > during + 20 }
            var cancel = Chimera_V1_CancelJob()
            cancel.jobID = started.jobID
            cancel.jobToken = started.jobToken
            _ = try cluster.client().call(WireMessage(.cancelJob(cancel)), timeoutMilliseconds: 10_000)
            let ended = try ParameterServerProcessTests.waitForJob(cluster.client(), started.jobID)
            #expect(ended.state == .cancelled, "\(ended.error)")
            #expect(try cluster.client().fit(Self.fit(servers: 1), timeoutMilliseconds: 60_000).state == .succeeded)
        }
    }

    @Test("a worker that dies and comes back mid-fit rejoins the sharded job with its new session; the fit finishes")
    func workerRejoins() async throws {
        try await blocking {
            let data = try ParameterServerProcessTests.synthData(workers: 2)
            defer { try? FileManager.default.removeItem(at: data) }
            let cluster = try LocalCluster(extraArguments: ["--servers", "2"])
            for index in 1...2 {
                try cluster.startWorker(
                    name: "worker-\(index)", data: data.appendingPathComponent("worker-\(index)"), delayMilliseconds: 10
                )
            }
            try cluster.waitFor("2 workers and 2 servers") {
                $0.workers.filter(\.ready).count == 2 && $0.servers.count == 2
            }
            var request = Self.fit(servers: 2, iterations: 400)
            request.asynchronous = true
            let started = try cluster.client().fit(request, timeoutMilliseconds: 30_000)
            try cluster.waitFor("20 iterations") { $0.iteration >= 20 }
            cluster.workers["worker-2"]?.send(signal: SIGKILL)
            try cluster.waitFor("worker-2 dead") { $0.workers.contains { $0.name == "worker-2" && !$0.alive } }
            try cluster.startWorker(
                name: "worker-2", data: data.appendingPathComponent("worker-2"), delayMilliseconds: 10)
            let ended = try ParameterServerProcessTests.waitForJob(
                try cluster.client(), started.jobID, timeoutSeconds: 120)
            #expect(ended.state == .succeeded, "\(ended.error)")
            #expect(ended.report.clocks.filter(\.alive).count == 2, "worker-2 did not rejoin the job")
        }
    }
}
