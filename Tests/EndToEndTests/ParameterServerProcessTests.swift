import ChimeraCluster
import ChimeraML
import ChimeraTestSupport
import ChimeraWire
import Foundation
import SwiftProtobuf
import Testing
import ZeroMQ

/// Real master and worker processes over tcp on 127.0.0.1.
@Suite("Parameter server, end to end", .serialized)
struct ParameterServerProcessTests {
    static let breastCancer = repositoryRoot.appendingPathComponent("deploy/data/breast-cancer")

    /// Writes a synthetic dataset with `workers` shards through the real `chimera data synth`.
    static func synthData(workers: Int, rows: Int = 3_000) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "chimera-synth-\(UUID().uuidString.prefix(8))")
        let result = try runChimera([
            "data", "synth", "--out", folder.path, "--rows", "\(rows)", "--features", "10", "--workers", "\(workers)",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        return folder
    }

    static func asyncFit(_ client: MasterClient, iterations: Int, staleness: UInt64 = 0) throws -> UInt64 {
        try asyncFitReply(client, iterations: iterations, staleness: staleness).jobID
    }

    static func asyncFitReply(_ client: MasterClient, iterations: Int, staleness: UInt64 = 0) throws
        -> Chimera_V1_FitReply
    {
        var request = Chimera_V1_FitRequest()
        request.kind = .parameterServer
        request.asynchronous = true
        request.config.maxIterations = UInt64(iterations)
        request.config.eta0 = 0.2
        request.config.staleness = staleness
        let reply = try client.fit(request, timeoutMilliseconds: 30_000)
        #expect(reply.state == .running)
        return reply
    }

    static func waitForJob(_ client: MasterClient, _ id: UInt64, timeoutSeconds: Double = 300) throws
        -> Chimera_V1_JobStatus
    {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while true {
            let status = try client.jobStatus(id)
            if status.state != .running || Date() > deadline { return status }
            usleep(50_000)
        }
    }

    /// A master and `workers` ready worker processes named worker-1…, one per shard folder of `data`.
    static func cluster(workers: Int, data: URL, delayMilliseconds: Int = 0) throws -> LocalCluster {
        let cluster = try LocalCluster()
        for index in 1...workers {
            try cluster.startWorker(
                name: "worker-\(index)", data: data.appendingPathComponent("worker-\(index)"),
                delayMilliseconds: delayMilliseconds)
        }
        try cluster.waitFor("\(workers) workers") { $0.workers.filter(\.ready).count == workers }
        return cluster
    }

    static func worker(_ status: Chimera_V1_ClusterStatus, _ name: String) -> Chimera_V1_WorkerClock? {
        status.workers.first { $0.name == name }
    }

    @Test("logistic regression on the committed breast-cancer data: ≥ 0.95 held-out accuracy, model saved")
    func breastCancer() async throws {
        try await blocking {
            let cluster = try Self.cluster(workers: 4, data: Self.breastCancer)
            let client = try cluster.client()
            var request = Chimera_V1_FitRequest()
            request.config.maxIterations = 200
            request.config.eta0 = 0.5
            let reply = try client.fit(request, timeoutMilliseconds: 300_000)
            #expect(reply.state == .succeeded)
            #expect(reply.report.iterations == 200)
            #expect(reply.report.clocks.count == 4 && reply.report.clocks.allSatisfy { $0.clock == 200 && $0.alive })
            #expect(reply.report.stalenessHistogram == [800], "BSP: every start at the slowest clock")
            #expect(reply.report.bytesReceived > 0 && reply.report.bytesSent > 0)

            let (columns, rows) = try ShardLayout.loadFeatures(
                Self.breastCancer.appendingPathComponent("test/X_test.csv").path)
            let truth = try ShardLayout.loadLabels(Self.breastCancer.appendingPathComponent("test/y_test.csv").path)
            // Columns in reverse order: the master matches them by name.
            let reversed = rows.map { Array($0.reversed()) }
            let prediction = try client.predict(
                columns: columns.reversed(), values: reversed.flatMap { $0 }, rows: rows.count, probabilities: true)
            let accuracy = Double(zip(prediction.values, truth).filter { $0 == Double($1) }.count) / Double(truth.count)
            #expect(accuracy >= 0.95, "held-out accuracy \(accuracy)")
            #expect(prediction.probabilities?.count == rows.count * 2)
            #expect(
                FileManager.default.fileExists(atPath: cluster.modelDirectory.appendingPathComponent("model.json").path)
            )

            let unknown = #expect(throws: MasterClientError.self) {
                try client.predict(
                    columns: ["nonsense"] + columns.dropFirst(), values: rows.flatMap { $0 }, rows: rows.count)
            }
            #expect(unknown?.description.contains("nonsense") == true)
        }
    }

    @Test("a worker whose columns differ from the cluster's is refused with the difference named")
    func mismatchedWorker() async throws {
        try await blocking {
            let cluster = try Self.cluster(workers: 1, data: Self.breastCancer)
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
                "odd-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: folder) }
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try "colour,size\n1,2\n".write(
                to: folder.appendingPathComponent("X_train.csv"), atomically: true, encoding: .utf8)
            try "y\n1\n".write(to: folder.appendingPathComponent("y_train.csv"), atomically: true, encoding: .utf8)
            let result = try runChimera([
                "worker", "--master", cluster.workersEndpoint, "--data", folder.path, "--name", "odd",
            ])
            #expect(result.status != 0)
            #expect(result.stderr.contains("columns differ") && result.stderr.contains("colour"), "\(result.stderr)")
            #expect(try cluster.client().status().workers.count == 1)
        }
    }

    @Test(
        "a fit that names no model gets one from the labels: continuous → linear, 4 classes → softmax",
        arguments: [
            ["--task", "regression", "--features", "6"], ["--classes", "4", "--features", "6"],
        ])
    func modelFromLabels(_ synth: [String]) async throws {
        try await blocking {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
                "chimera-auto-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: folder) }
            let made = try runChimera(
                ["data", "synth", "--out", folder.path, "--rows", "3000", "--workers", "2"] + synth)
            #expect(made.status == 0, "\(made.stderr)")
            let cluster = try Self.cluster(workers: 2, data: folder)
            let client = try cluster.client()
            var request = Chimera_V1_FitRequest()
            request.config.eta0 = 0.2
            let reply = try client.fit(request, timeoutMilliseconds: 120_000)
            #expect(reply.state == .succeeded, "\(reply)")
            let saved = try FittedModel.load(from: cluster.modelDirectory.appendingPathComponent("model.json"))
            let regression = synth.contains("regression")
            #expect(saved.model == (regression ? .linearRegression : .softmax))

            let (columns, rows) = try ShardLayout.loadFeatures(folder.appendingPathComponent("test/X_test.csv").path)
            let truth = try ShardLayout.loadLabels(folder.appendingPathComponent("test/y_test.csv").path).map(
                Double.init)
            let prediction = try client.predict(columns: columns, values: rows.flatMap { $0 }, rows: rows.count)
            if regression {
                #expect(prediction.classes.isEmpty)
                let mean = truth.reduce(0, +) / Double(truth.count)
                let residual = zip(prediction.values, truth).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                let total = truth.reduce(0.0) { $0 + ($1 - mean) * ($1 - mean) }
                #expect(1 - residual / total >= 0.8, "R² \(1 - residual / total)")
            } else {
                #expect(prediction.classes == [0, 1, 2, 3])
                let accuracy = Double(zip(prediction.values, truth).filter { $0 == $1 }.count) / Double(truth.count)
                #expect(accuracy >= 0.5, "4 classes: accuracy \(accuracy) (chance is 0.25)")
            }
        }
    }

    @Test("SIGKILL a worker mid-fit: the fit completes with the others; restarted, it rejoins the running fit")
    func killAndRejoin() async throws {
        try await blocking {
            let data = try Self.synthData(workers: 3)
            defer { try? FileManager.default.removeItem(at: data) }
            let cluster = try Self.cluster(workers: 3, data: data, delayMilliseconds: 5)
            let client = try cluster.client()
            let job = try Self.asyncFit(client, iterations: 1_500)
            try cluster.waitFor("iteration 10") { $0.iteration >= 10 }

            cluster.workers["worker-3"]!.send(signal: SIGKILL)
            let afterDeath = try cluster.waitFor("worker-3 dead") { Self.worker($0, "worker-3")?.alive == false }
            try cluster.waitFor("training goes on") { $0.iteration >= afterDeath.iteration + 20 }

            try cluster.startWorker(
                name: "worker-3", data: data.appendingPathComponent("worker-3"), delayMilliseconds: 5)
            let rejoined = try cluster.waitFor("worker-3 back") { Self.worker($0, "worker-3")?.alive == true }
            try cluster.waitFor("worker-3 training") {
                (Self.worker($0, "worker-3")?.clock ?? 0) >= rejoined.iteration + 5
            }

            let final = try Self.waitForJob(client, job)
            #expect(final.state == .succeeded)
            #expect(final.report.iterations == 1_500)
            #expect(final.report.failedWorkers.isEmpty, "worker-3 rejoined and finished: it did not fail the job")
            #expect(final.report.clocks.filter(\.alive).count == 3, "the rejoined worker finished with the others")
        }
    }

    @Test("SIGSTOP a worker: after the heartbeat timeout the others continue; SIGCONT: it comes back")
    func stoppedWorker() async throws {
        try await blocking {
            let data = try Self.synthData(workers: 3)
            defer { try? FileManager.default.removeItem(at: data) }
            let cluster = try Self.cluster(workers: 3, data: data, delayMilliseconds: 2)
            let client = try cluster.client()
            let started = try Self.asyncFitReply(client, iterations: 1_000_000)
            let job = started.jobID
            try cluster.waitFor("iteration 10") { $0.iteration >= 10 }

            let stopped = cluster.workers["worker-2"]!
            stopped.send(signal: SIGSTOP)
            let dead = try cluster.waitFor("worker-2 declared dead") { Self.worker($0, "worker-2")?.alive == false }
            try cluster.waitFor("the others continue") { $0.iteration >= dead.iteration + 20 }
            stopped.send(signal: SIGCONT)
            try cluster.waitFor("worker-2 re-registered") { Self.worker($0, "worker-2")?.alive == true }

            // Another client, without the job's token, cannot cancel it.
            var cancel = Chimera_V1_CancelJob()
            cancel.jobID = job
            #expect(throws: MasterClientError.self) {
                try client.call(WireMessage(.cancelJob(cancel)), timeoutMilliseconds: 10_000)
            }
            #expect(try client.jobStatus(job).state == .running)
            cancel.jobToken = started.jobToken
            _ = try client.call(WireMessage(.cancelJob(cancel)), timeoutMilliseconds: 10_000)
            #expect(try client.jobStatus(job).state == .cancelled)
        }
    }

    @Test("bad frames are rejected and counted; the fit is unharmed")
    func badFrames() async throws {
        try await blocking {
            let cluster = try Self.cluster(workers: 2, data: Self.breastCancer)
            let client = try cluster.client()
            let job = try Self.asyncFit(client, iterations: 400)

            // A hostile peer on the workers socket.
            let peer = try HandMadePeer(endpoint: cluster.workersEndpoint)
            func exchange(_ frames: [Frame]) throws -> WireMessage? { try peer.exchange(frames) }
            // Garbage, then an unsupported version.
            #expect(errorCode(try exchange([try Frame(string: "GET / HTTP/1.1")])) == .badRequest)
            #expect(errorCode(try exchange([try Frame(WireCodec.magic + [9]), try Frame([1])])) == .unsupportedVersion)
            // Register as a worker with the right columns, then push a wrong-sized and a NaN gradient.
            let shard = try ShardLayout.loadShard(Self.breastCancer.appendingPathComponent("worker-3"))
            let hello = HandMadePeer.hello(name: "intruder", rows: shard.rows, features: shard.featureNames)
            // Column sums that cannot be used (one value short) refuse the hello itself.
            let shortSums = WireMessage(
                .hello(hello),
                tensors: [
                    NamedTensor("column_sum", .float64([Double](repeating: 1, count: shard.columns - 1))),
                    NamedTensor("column_sum_of_squares", .float64([Double](repeating: 1, count: shard.columns))),
                ])
            #expect(errorCode(try exchange(try WireCodec.encode(shortSums))) == .badRequest)
            guard case .welcome(let welcome) = try exchange(try WireCodec.encode(WireMessage(.hello(hello))))?.body
            else {
                Issue.record("no welcome")
                return
            }
            var push = Chimera_V1_GradientPush()
            push.workerID = welcome.workerID
            push.session = welcome.session
            push.jobID = job
            push.clock = welcome.currentJob.startClock
            push.rows = 10
            let wrong = WireMessage(
                .gradientPush(push), tensors: [NamedTensor("gradient", .float32([1, 2, 3], shape: [1, 3]))])
            #expect(errorCode(try exchange(try WireCodec.encode(wrong))) == .wrongShape)
            var values = [Float](repeating: 0, count: shard.columns + 1)
            values[4] = .nan
            let poisoned = WireMessage(
                .gradientPush(push),
                tensors: [NamedTensor("gradient", .float32(values, shape: [1, shard.columns + 1]))])
            #expect(errorCode(try exchange(try WireCodec.encode(poisoned))) == .nonFinite)
            var goodbye = Chimera_V1_WorkerGoodbye()
            goodbye.workerID = welcome.workerID
            goodbye.session = welcome.session
            goodbye.reason = "test over"
            _ = try exchange(try WireCodec.encode(WireMessage(.goodbye(goodbye))))

            let final = try Self.waitForJob(client, job)
            #expect(final.state == .succeeded)
            #expect(final.report.iterations == 400)
            let status = try client.status()
            #expect(status.rejectedMessages >= 4)
            #expect(status.rejectedByKind["not_chimera"] == 1)
            #expect(status.rejectedByKind["unsupported_version"] == 1)
            #expect(status.rejectedByKind["wrong_tensor"] == 1)
            #expect(status.rejectedByKind["non_finite"] == 1)
            #expect(status.rejectedByKind["bad_hello"] == 1)

            let (columns, rows) = try ShardLayout.loadFeatures(
                Self.breastCancer.appendingPathComponent("test/X_test.csv").path)
            let truth = try ShardLayout.loadLabels(Self.breastCancer.appendingPathComponent("test/y_test.csv").path)
            let prediction = try client.predict(columns: columns, values: rows.flatMap { $0 }, rows: rows.count)
            let accuracy = Double(zip(prediction.values, truth).filter { $0 == Double($1) }.count) / Double(truth.count)
            #expect(accuracy >= 0.93, "the model is intact: held-out accuracy \(accuracy)")
        }
    }
}

@Suite("Checkpoints and resume, end to end", .serialized)
struct CheckpointProcessTests {
    @Test("checkpoints are written during the fit; a restarted master with --resume serves the model")
    func resume() async throws {
        try await blocking {
            let breastCancer = ParameterServerProcessTests.breastCancer
            let modelDirectory: URL
            do {
                let cluster = try LocalCluster()
                modelDirectory = cluster.modelDirectory
                for index in 1...2 {
                    try cluster.startWorker(
                        name: "worker-\(index)", data: breastCancer.appendingPathComponent("worker-\(index)"))
                }
                try cluster.waitFor("2 workers") { $0.workers.filter(\.ready).count == 2 }
                var request = Chimera_V1_FitRequest()
                request.config.maxIterations = 60
                request.config.eta0 = 0.5
                request.config.checkpointEvery = 10
                let reply = try cluster.client().fit(request, timeoutMilliseconds: 120_000)
                #expect(reply.state == .succeeded)
                let checkpoint = try FittedModel.load(from: modelDirectory.appendingPathComponent("checkpoint.json"))
                #expect(checkpoint.iterations == 60)
                #expect(checkpoint.clocks.values.allSatisfy { $0 == 60 })
                // Keep the files: copy them out before this cluster (and its folder) goes away.
                try? FileManager.default.removeItem(at: modelDirectory.appendingPathExtension("kept"))
                try FileManager.default.copyItem(at: modelDirectory, to: modelDirectory.appendingPathExtension("kept"))
            }
            let kept = modelDirectory.appendingPathExtension("kept")
            defer { try? FileManager.default.removeItem(at: kept) }
            let master = try ChildProcess(
                name: "master", arguments: ["master", "--port", "0", "--model-dir", kept.path, "--resume"],
                prefix: "[master]", captureOutput: true, executable: try chimeraExecutable())
            defer {
                master.send(signal: SIGKILL)
                master.wait(timeoutSeconds: 5)
            }
            let line = try #require(master.nextLine(timeoutSeconds: 60))
            let control = try #require(line.split(separator: " ").first { $0.hasPrefix("control=") }?.dropFirst(8))
            let client = try MasterClient(endpoint: String(control))
            let (columns, rows) = try ShardLayout.loadFeatures(
                breastCancer.appendingPathComponent("test/X_test.csv").path)
            let truth = try ShardLayout.loadLabels(breastCancer.appendingPathComponent("test/y_test.csv").path)
            let prediction = try client.predict(columns: columns, values: rows.flatMap { $0 }, rows: rows.count)
            let accuracy = Double(zip(prediction.values, truth).filter { $0 == Double($1) }.count) / Double(truth.count)
            #expect(accuracy >= 0.9, "the resumed model predicts: accuracy \(accuracy)")
        }
    }
}
