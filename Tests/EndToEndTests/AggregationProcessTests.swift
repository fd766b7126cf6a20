import ChimeraCluster
import ChimeraML
import ChimeraTestSupport
import ChimeraWire
import Foundation
import SwiftProtobuf
import Testing
import ZeroMQ

/// Bagging with a real aggregation master and worker processes over tcp on 127.0.0.1.
@Suite("Aggregation (bagging), end to end", .serialized)
struct AggregationProcessTests {
    static let breastCancer = ParameterServerProcessTests.breastCancer

    static func cluster(workers: Int, data: URL, heartbeatMilliseconds: Int = 200, delays: [String: Int] = [:]) throws
        -> LocalCluster
    {
        let cluster = try LocalCluster(
            heartbeatMilliseconds: heartbeatMilliseconds, extraArguments: ["--mode", "aggregation"])
        for index in 1...workers {
            let name = "worker-\(index)"
            try cluster.startWorker(
                name: name, data: data.appendingPathComponent(name), delayMilliseconds: delays[name] ?? 0)
        }
        try cluster.waitFor("\(workers) workers") { $0.workers.filter(\.ready).count == workers }
        return cluster
    }

    static func treeFit(trees: Int = 1, maxFeatures: String = "", criterion: String = "", asynchronous: Bool = false)
        -> Chimera_V1_FitRequest
    {
        var request = Chimera_V1_FitRequest()
        request.kind = .aggregation
        request.asynchronous = asynchronous
        request.config.treesPerWorker = UInt32(trees)
        request.config.maxFeatures = maxFeatures
        request.config.criterion = criterion
        return request
    }

    static func testRows(_ folder: URL) throws -> (columns: [String], rows: [[Float]], truth: [Float]) {
        let (columns, rows) = try ShardLayout.loadFeatures(folder.appendingPathComponent("test/X_test.csv").path)
        return (columns, rows, try ShardLayout.loadLabels(folder.appendingPathComponent("test/y_test.csv").path))
    }

    /// Accuracy of P(class 1) > 0.5, as the Python Chimera's examples threshold it.
    static func accuracy(_ client: MasterClient, fanOut: Bool = false) throws -> (accuracy: Double, values: [Double]) {
        let (columns, rows, truth) = try testRows(breastCancer)
        let prediction = try client.predict(
            columns: columns, values: rows.flatMap { $0 }, rows: rows.count, kind: .aggregation, fanOut: fanOut)
        #expect(prediction.classes == [0, 1])
        #expect(prediction.values.allSatisfy { (0...1).contains($0) }, "binary bagging answers P(class 1)")
        let labels = prediction.values.map { $0 > 0.5 ? 1.0 : 0.0 }
        return (Double(zip(labels, truth).filter { $0 == Double($1) }.count) / Double(truth.count), prediction.values)
    }

    @Test("the same data and seed give the same ensemble whatever the workers are called")
    func ensembleIndependentOfNames() async throws {
        try await blocking {
            var answers: [[Double]] = []
            for names in [["worker-1", "worker-2"], ["zeta", "alpha"]] {
                let cluster = try LocalCluster(extraArguments: ["--mode", "aggregation"])
                for (index, name) in names.enumerated() {
                    try cluster.startWorker(
                        name: name, data: Self.breastCancer.appendingPathComponent("worker-\(index + 1)"))
                }
                try cluster.waitFor("2 workers") { $0.workers.filter(\.ready).count == 2 }
                let client = try cluster.client()
                #expect(try client.fit(Self.treeFit(trees: 3, maxFeatures: "sqrt")).state == .succeeded)
                answers.append(try Self.accuracy(client).values)
                // Idle, the status names the last job and its state (not "job 0 unspecified").
                let status = try client.status()
                #expect(status.currentJobID == 1 && status.currentJobState == .succeeded)
            }
            #expect(answers[0] == answers[1])
        }
    }

    @Test("breast cancer, 4 workers: one tree each ≥ 0.89; 8 trees with sqrt features ≥ 0.94; fan-out agrees; saved")
    func breastCancerAccuracy() async throws {
        try await blocking {
            let cluster = try Self.cluster(workers: 4, data: Self.breastCancer)
            let client = try cluster.client()
            let single = try client.fit(Self.treeFit(), timeoutMilliseconds: 120_000)
            #expect(single.state == .succeeded)
            #expect(single.report.members == 4 && single.report.failedWorkers.isEmpty)
            let (defaultAccuracy, _) = try Self.accuracy(client)
            #expect(defaultAccuracy >= 0.89, "one tree per worker: \(defaultAccuracy)")

            let forest = try client.fit(Self.treeFit(trees: 8, maxFeatures: "sqrt"), timeoutMilliseconds: 120_000)
            #expect(forest.report.members == 32)
            let (forestAccuracy, local) = try Self.accuracy(client)
            #expect(forestAccuracy >= 0.94, "8 trees per worker, sqrt features: \(forestAccuracy)")
            let (fanOutAccuracy, remote) = try Self.accuracy(client, fanOut: true)
            #expect(fanOutAccuracy == forestAccuracy)
            #expect(
                zip(local, remote).allSatisfy { abs($0 - $1) < 1e-5 }, "workers' own trees give the master's answer")
            #expect(
                FileManager.default.fileExists(
                    atPath: cluster.modelDirectory.appendingPathComponent("ensemble.json").path))

            // A parameter-server request is refused with a reason naming the mode.
            var wrong = Chimera_V1_FitRequest()
            wrong.kind = .parameterServer
            #expect {
                try client.fit(wrong, timeoutMilliseconds: 10_000)
            } throws: { error in
                guard case MasterClientError.refused(.wrongMode, let message) = error else { return false }
                return message.contains("aggregation mode")
            }
        }
    }

    @Test("regression trees on a synthetic non-linear set: R² ≥ 0.8 through the processes")
    func regression() async throws {
        try await blocking {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
                "chimera-reg-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: folder) }
            let made = try runChimera([
                "data", "synth", "--out", folder.path, "--task", "regression", "--nonlinear", "--rows", "4000",
                "--features", "4",
                "--informative", "2", "--noise", "0.1", "--workers", "2",
            ])
            #expect(made.status == 0, "\(made.stderr)")
            let cluster = try Self.cluster(workers: 2, data: folder)
            let client = try cluster.client()
            // Naming no model, as the Python Chimera's clients do: the continuous labels make it regression.
            let auto = try client.fit(Self.treeFit(trees: 1), timeoutMilliseconds: 120_000)
            #expect(auto.state == .succeeded && auto.report.members == 2)
            let (testColumns, testRows, _) = try Self.testRows(folder)
            #expect(
                try client.predict(columns: testColumns, values: testRows.flatMap { $0 }, rows: testRows.count).classes
                    .isEmpty)

            var request = Self.treeFit(trees: 3, criterion: "squared_error")
            request.config.minSamplesLeaf = 3
            let reply = try client.fit(request, timeoutMilliseconds: 120_000)
            #expect(reply.state == .succeeded && reply.report.members == 6)
            let (columns, rows, truth) = try Self.testRows(folder)
            let prediction = try client.predict(columns: columns, values: rows.flatMap { $0 }, rows: rows.count)
            #expect(prediction.classes.isEmpty)
            let mean = truth.reduce(0, +) / Float(truth.count)
            let residual = zip(prediction.values, truth).reduce(0.0) {
                $0 + ($1.0 - Double($1.1)) * ($1.0 - Double($1.1))
            }
            let total = truth.reduce(0.0) { $0 + Double(($1 - mean) * ($1 - mean)) }
            #expect(1 - residual / total >= 0.8, "R² \(1 - residual / total)")
        }
    }

    @Test("a worker SIGKILLed during the fit: the fit succeeds with the others and names it")
    func killDuringFit() async throws {
        try await blocking {
            // worker-4 spends 30 s "computing" its tree: it is certainly mid-fit when killed.
            let cluster = try Self.cluster(workers: 4, data: Self.breastCancer, delays: ["worker-4": 30_000])
            let client = try cluster.client()
            let started = try client.fit(Self.treeFit(asynchronous: true), timeoutMilliseconds: 10_000)
            // Wait until the three quick workers have delivered, then kill the slow one.
            let deadline = Date().addingTimeInterval(60)
            while try client.jobStatus(started.jobID).report.members < 3 && Date() < deadline { usleep(50_000) }
            cluster.workers["worker-4"]!.send(signal: SIGKILL)
            let final = try ParameterServerProcessTests.waitForJob(client, started.jobID, timeoutSeconds: 60)
            #expect(final.state == .succeeded)
            #expect(final.report.members == 3)
            #expect(final.report.failedWorkers.count == 1 && final.report.failedWorkers[0].hasPrefix("worker-4"))
            let (accuracy, _) = try Self.accuracy(client)
            #expect(accuracy >= 0.85)
        }
    }

    @Test("an idle worker stopped until declared dead comes back by itself, ready, and takes part in the next fit")
    func idleWorkerReturns() async throws {
        try await blocking {
            let cluster = try Self.cluster(workers: 2, data: Self.breastCancer)
            let client = try cluster.client()
            let stopped = cluster.workers["worker-2"]!
            stopped.send(signal: SIGSTOP)
            try cluster.waitFor("worker-2 declared dead") {
                ParameterServerProcessTests.worker($0, "worker-2")?.alive == false
            }
            stopped.send(signal: SIGCONT)
            // No job runs meanwhile: only its heartbeats can tell it that the master forgot it.
            try cluster.waitFor("worker-2 back and ready") { status in
                status.workers.filter { $0.alive && $0.ready }.count == 2
            }
            let reply = try client.fit(Self.treeFit(trees: 2), timeoutMilliseconds: 60_000)
            #expect(reply.state == .succeeded)
            #expect(reply.report.members == 4, "both workers' trees")
        }
    }

    @Test("malformed tree bytes from a worker are refused and counted; the fit succeeds with the others")
    func malformedTrees() async throws {
        try await blocking {
            let cluster = try Self.cluster(workers: 2, data: Self.breastCancer, heartbeatMilliseconds: 2_000)
            let client = try cluster.client()
            // A hand-made worker: hello, the broadcast handshake, then garbage instead of a tree.
            let peer = try HandMadePeer(endpoint: cluster.workersEndpoint)
            let context = peer.context
            func exchange(_ message: WireMessage) throws -> WireMessage? { try peer.exchange(message) }
            let shard = try ShardLayout.loadShard(Self.breastCancer.appendingPathComponent("worker-3"))
            let hello = HandMadePeer.hello(name: "intruder", rows: shard.rows, features: shard.featureNames)
            guard case .welcome(let welcome) = try exchange(WireMessage(.hello(hello)))?.body else {
                Issue.record("no welcome")
                return
            }
            let sub = try testSocket(context, .sub)
            try sub.subscribe()
            try sub.connect(welcome.broadcastEndpoint)
            func nextBroadcast() throws -> WireMessage? {
                guard let frames = try sub.receiveMultipart() else { return nil }
                return try WireCodec.decode(frames)
            }
            while true {
                guard let message = try nextBroadcast() else { Issue.record("no sync"); return }
                if case .sync(let sync) = message.body {
                    var ready = Chimera_V1_SubscriptionReady()
                    ready.workerID = welcome.workerID
                    ready.session = welcome.session
                    ready.syncSequence = sync.sequence
                    _ = try exchange(WireMessage(.subscriptionReady(ready)))
                    break
                }
            }
            let started = try client.fit(Self.treeFit(asynchronous: true), timeoutMilliseconds: 10_000)
            var start: Chimera_V1_JobStart?
            while start == nil, let message = try nextBroadcast() {
                if case .jobStart(let value) = message.body { start = value }
            }
            #expect(start?.jobID == started.jobID && start?.kind == .aggregation)
            var result = Chimera_V1_WorkerResult()
            result.workerID = welcome.workerID
            result.session = welcome.session
            result.jobID = started.jobID
            let garbage = WireMessage(
                .workerResult(result), tensors: [NamedTensor("tree.0", .bytes(Array("CHTR not a tree".utf8)))])
            guard case .error(let error) = try exchange(garbage)?.body else {
                Issue.record("malformed tree bytes were accepted")
                return
            }
            #expect(error.code == .badRequest && error.message.contains("tree.0"))

            let final = try ParameterServerProcessTests.waitForJob(client, started.jobID, timeoutSeconds: 60)
            #expect(final.state == .succeeded)
            #expect(final.report.members == 2)
            #expect(final.report.failedWorkers.count == 1 && final.report.failedWorkers[0].hasPrefix("intruder"))
            #expect(try client.status().rejectedByKind["malformed_tree"] == 1)
            let (accuracy, _) = try Self.accuracy(client)
            #expect(accuracy >= 0.85)
        }
    }
}
