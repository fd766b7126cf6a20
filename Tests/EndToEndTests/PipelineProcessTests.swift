import ChimeraCluster
import ChimeraML
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Testing

/// Pipeline-parallel networks through the real processes: stages on worker processes streaming
/// activations and gradients to each other, the master serving and averaging their slices.
@Suite("Pipeline parallelism, end to end", .serialized)
struct PipelineProcessTests {
    static let digits = repositoryRoot.appendingPathComponent("deploy/data/digits")

    /// A master and ready workers: `folders[i]` is worker-(i+1)'s data.
    static func cluster(_ folders: [String], heartbeatMilliseconds: Int = 200) throws -> LocalCluster {
        let cluster = try LocalCluster(heartbeatMilliseconds: heartbeatMilliseconds)
        for (index, folder) in folders.enumerated() {
            try cluster.startWorker(name: "worker-\(index + 1)", data: digits.appendingPathComponent(folder))
        }
        try cluster.waitFor("\(folders.count) workers") { $0.workers.filter(\.ready).count == folders.count }
        return cluster
    }

    static let network = [
        "--model", "mlp", "--hidden", "32,16,16", "--batch-size", "24", "--eta0", "0.05", "--momentum", "0.9",
        "--alpha", "0.001", "--iterations", "20", "--seed", "7",
    ]

    /// Fits synchronously and returns the reply and the saved weights.
    static func fit(_ cluster: LocalCluster, _ arguments: [String]) throws -> (Chimera_V1_FitReply, [Float]) {
        var request = Chimera_V1_FitRequest()
        request.kind = .parameterServer
        request.config = try FitSettings.parse(arguments: arguments).wire(mode: .parameterServer)
        let reply = try cluster.client().fit(request, timeoutMilliseconds: 120_000)
        let saved = try FittedModel.load(from: cluster.modelDirectory.appendingPathComponent("model.json"))
        return (reply, saved.weights)
    }

    static func largestDifference(_ a: [Float], _ b: [Float]) -> Float {
        a.count == b.count ? zip(a, b).map { abs($0 - $1) }.max() ?? 0 : .infinity
    }

    @Test(
        "K = 1, 2, 4 stages under GPipe and 1F1B equal the data-parallel fit on the same batches to 1e-5; 1F1B holds at most K − s micro-batches"
    )
    func pipelineEqualsDataParallel() async throws {
        try await blocking {
            // Four workers on one shard: the data-parallel fit averages four equal gradients, i.e. one.
            let cluster = try Self.cluster(Array(repeating: "worker-1", count: 4))
            let (referenceReply, reference) = try Self.fit(cluster, Self.network)
            #expect(referenceReply.state == .succeeded)
            for stages in [1, 2, 4] {
                for schedule in ["gpipe", "1f1b"] {
                    let (reply, weights) = try Self.fit(
                        cluster,
                        Self.network + [
                            "--parallelism", "pipeline", "--stages", "\(stages)", "--micro-batches", "5",
                            "--schedule-pipeline", schedule,
                        ])
                    #expect(reply.state == .succeeded)
                    let difference = Self.largestDifference(weights, reference)
                    #expect(difference < 1e-5, "K \(stages) \(schedule): largest weight difference \(difference)")
                    #expect(abs(reply.report.finalLoss - referenceReply.report.finalLoss) < 1e-5)
                    let lines = reply.report.stages
                    #expect(lines.map(\.stage) == (0..<stages).map(UInt32.init))
                    #expect(lines.map(\.parameters).reduce(0, +) == UInt64(reference.count))
                    for line in lines {
                        let bound = schedule == "gpipe" ? 5 : min(stages - Int(line.stage), 5)
                        #expect(Int(line.peakMicroBatches) == bound, "\(schedule) stage \(line.stage)")
                        #expect(line.computeSeconds > 0)
                        if stages > 1 { #expect(line.bytesSent > 0) }
                    }
                }
            }
        }
    }

    @Test(
        "stages that own their weights: Adam and checkpoints equal the data-parallel fit to 1e-5, and the master moves no slice between checkpoints"
    )
    func stageOwnedWeights() async throws {
        try await blocking {
            let cluster = try Self.cluster(Array(repeating: "worker-1", count: 2))
            let settings = Self.network + ["--optimizer", "adam", "--eta0", "0.01", "--checkpoint-every", "7"]
            let checkpoint = cluster.modelDirectory.appendingPathComponent("checkpoint.json")
            let (referenceReply, reference) = try Self.fit(cluster, settings)
            #expect(referenceReply.state == .succeeded)
            let (reply, weights) = try Self.fit(
                cluster, settings + ["--parallelism", "pipeline", "--stages", "2", "--micro-batches", "4"])
            #expect(reply.state == .succeeded)
            #expect(Self.largestDifference(weights, reference) < 1e-5)
            #expect(abs(reply.report.finalLoss - referenceReply.report.finalLoss) < 1e-5)
            // The loss history (penalty included) is the data-parallel one.
            let saved = try FittedModel.load(from: checkpoint)
            #expect(saved.iterations == 20 && Self.largestDifference(saved.weights, reference) < 1e-5)
            // The slices crossed the master once at the start, at the checkpoints 7 and 14, and at the end:
            // five copies of the vector, where pulling and pushing every iteration moves forty.
            let vector = Double(reference.count * 4)
            let moved = Double(reply.report.bytesSent + reply.report.bytesReceived)
            #expect(moved < 6 * vector, "\(moved) bytes through the master for a \(vector)-byte vector")
            // Cancelled midway, the stale vector is not saved as a model.
            let before = try FittedModel.load(from: cluster.modelDirectory.appendingPathComponent("model.json"))
            var request = Chimera_V1_FitRequest()
            request.kind = .parameterServer
            request.asynchronous = true
            request.config = try FitSettings.parse(
                arguments: Self.network + [
                    "--iterations", "10000000", "--parallelism", "pipeline", "--stages", "2", "--seed", "99",
                ]
            ).wire(mode: .parameterServer)
            let client = try cluster.client()
            let started = try client.fit(request)
            usleep(300_000)
            try client.cancel(jobID: started.jobID, token: started.jobToken)
            _ = try cluster.waitFor("the cancelled job") { $0.currentJobState == .cancelled }
            let after = try FittedModel.load(from: cluster.modelDirectory.appendingPathComponent("model.json"))
            #expect(after.weights == before.weights && after.jobID == before.jobID)
        }
    }

    @Test("hybrid: 2 replicas × 2 stages on two shards equal the data-parallel fit on both to 1e-5")
    func hybridEqualsDataParallel() async throws {
        try await blocking {
            let cluster = try Self.cluster(["worker-1", "worker-1", "worker-2", "worker-2"])
            let (_, reference) = try Self.fit(cluster, Self.network)
            let (reply, weights) = try Self.fit(
                cluster,
                Self.network + [
                    "--parallelism", "pipeline", "--stages", "2", "--replicas", "2", "--micro-batches", "3",
                ])
            #expect(reply.state == .succeeded)
            #expect(Self.largestDifference(weights, reference) < 1e-5)
            #expect(reply.report.stages.map(\.replica) == [0, 0, 1, 1])
            #expect(Set(reply.report.stages.map(\.worker)).count == 4)
        }
    }

    @Test("more stages than layers, too few workers, different data, a linear model, staleness: each a named error")
    func badPipelines() async throws {
        try await blocking {
            let cluster = try Self.cluster(["worker-1", "worker-2"])
            let cases: [([String], String)] = [
                (["--hidden", "8", "--stages", "3"], "more stages than layers"),
                (["--hidden", "8,8", "--stages", "3"], "3 stages × 1 replica = 3 workers; 2 ready workers can"),
                (["--hidden", "8,8", "--stages", "2"], "must hold the same data"),
                (["--hidden", "8,8", "--stage-layers", "1,1"], "covers 2 layers"),
                (["--hidden", "8", "--staleness", "2"], "staleness 0"),
            ]
            for (arguments, cause) in cases {
                var request = Chimera_V1_FitRequest()
                request.kind = .parameterServer
                #expect {
                    request.config = try FitSettings.parse(
                        arguments: ["--model", "mlp", "--parallelism", "pipeline", "--iterations", "5"] + arguments
                    ).wire(mode: .parameterServer)
                    _ = try cluster.client().fit(request, timeoutMilliseconds: 30_000)
                } throws: { error in
                    "\(error)".contains(cause)
                }
            }
            #expect {
                var request = Chimera_V1_FitRequest()
                request.config = try FitSettings.parse(arguments: ["--model", "logistic", "--parallelism", "pipeline"])
                    .wire(mode: .parameterServer)
                _ = try cluster.client().fit(request, timeoutMilliseconds: 30_000)
            } throws: { "\($0)".contains("needs model mlp") }
            // The cluster is ready for the next fit.
            let (reply, _) = try Self.fit(cluster, ["--model", "mlp", "--hidden", "8", "--iterations", "5"])
            #expect(reply.state == .succeeded)
        }
    }

    @Test("a stage SIGKILLed mid-fit ends the job within the liveness window, naming the stage; the others go on")
    func stageKilled() async throws {
        try await blocking {
            let cluster = try Self.cluster(["worker-1", "worker-1", "worker-1"])
            var request = Chimera_V1_FitRequest()
            request.kind = .parameterServer
            request.asynchronous = true
            request.config = try FitSettings.parse(
                arguments: Self.network.dropLast(4) + [
                    "--iterations", "10000000", "--parallelism", "pipeline", "--stages", "3",
                ]
            ).wire(mode: .parameterServer)
            let client = try cluster.client()
            let jobID = try client.fit(request, timeoutMilliseconds: 30_000).jobID
            let running = try cluster.waitFor("20 iterations") { $0.iteration >= 20 }
            // The status names each worker's stage.
            #expect(running.workers.filter { $0.stage.hasPrefix("stage ") && $0.stage.contains("of 3") }.count == 3)
            let victim = try #require(cluster.workers["worker-2"])
            victim.send(signal: SIGKILL)
            let status = try ParameterServerProcessTests.waitForJob(client, jobID, timeoutSeconds: 30)
            #expect(status.state == .failed)
            #expect(status.error.contains("worker-2") && status.error.contains("stage"), "\(status.error)")
            // The two stages left are idle again: a data-parallel fit runs on them.
            try cluster.waitFor("2 ready workers") { $0.workers.filter { $0.ready && $0.alive }.count == 2 }
            let (reply, _) = try Self.fit(cluster, ["--model", "mlp", "--hidden", "8", "--iterations", "5"])
            #expect(reply.state == .succeeded && reply.report.clocks.filter(\.alive).count == 2)
        }
    }
}
