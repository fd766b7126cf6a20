import ChimeraCluster
import ChimeraML
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Testing

/// Feature-partitioned linear models through the real processes: `chimera data split-columns`, one
/// worker per block of columns, the master summing their margins.
@Suite("Feature-partitioned linear models, end to end", .serialized)
struct FeaturePartitionProcessTests {
    /// A shard folder of synthetic data and its column blocks, in a temporary folder.
    static func data(classes: Int, task: SyntheticData.Task = .classification, blocks: Int = 3, seed: UInt64 = 1)
        throws -> (
            whole: URL, split: URL
        )
    {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "chimera-columns-\(UUID().uuidString.prefix(8))")
        var spec = SyntheticData.Specification()
        spec.rows = 500
        spec.features = 11
        spec.classes = classes
        spec.task = task
        spec.seed = seed
        let data = SyntheticData.generate(spec)
        let split = SyntheticData.split(data, testFraction: 0.2, seed: 5)
        try ShardLayout.write(shards: [split.train], test: split.test, to: root)
        let result = try runChimera([
            "data", "split-columns", "--data", root.path, "--out", root.appendingPathComponent("blocks").path,
            "--workers", "\(blocks)",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        return (root.appendingPathComponent("worker-1"), root.appendingPathComponent("blocks"))
    }

    /// Fits and returns the saved model's weights by (output, feature name), and its loss.
    static func fit(_ cluster: LocalCluster, _ arguments: [String]) throws -> ([String: Float], Double) {
        var request = Chimera_V1_FitRequest()
        request.kind = .parameterServer
        request.config = try FitSettings.parse(arguments: arguments).wire(mode: .parameterServer)
        let reply = try cluster.client().fit(request, timeoutMilliseconds: 120_000)
        #expect(reply.state == .succeeded)
        let saved = try FittedModel.load(from: cluster.modelDirectory.appendingPathComponent("model.json"))
        let names = saved.featureNames + ["(bias)"]
        var byName: [String: Float] = [:]
        for (index, weight) in saved.weights.enumerated() {
            byName["\(index / names.count) \(names[index % names.count])"] = weight
        }
        return (byName, reply.report.finalLoss)
    }

    @Test(
        "linear, logistic and softmax over 3 column blocks equal single-process full-batch gradient descent to 1e-5",
        arguments: [("linear", 3), ("logistic", 2), ("softmax", 3)])
    func blocksEqualFullBatch(model: String, classes: Int) async throws {
        try await blocking {
            let (whole, split) = try Self.data(
                classes: classes, task: model == "linear" ? .regression : .classification)
            defer { try? FileManager.default.removeItem(at: whole.deletingLastPathComponent()) }
            let arguments = ["--model", model, "--iterations", "25", "--eta0", "0.1", "--alpha", "0.001"]
            let single = try LocalCluster()
            try single.startWorker(name: "worker-1", data: whole)
            try single.waitFor("1 worker") { $0.workers.filter(\.ready).count == 1 }
            let (reference, referenceLoss) = try Self.fit(single, arguments)

            let cluster = try LocalCluster()
            for index in 1...3 {
                try cluster.startWorker(name: "worker-\(index)", data: split.appendingPathComponent("worker-\(index)"))
            }
            try cluster.waitFor("3 blocks") { $0.workers.filter(\.ready).count == 3 }
            let (weights, loss) = try Self.fit(cluster, arguments + ["--parallelism", "features"])
            #expect(Set(weights.keys) == Set(reference.keys))
            let worst = reference.map { abs($0.value - (weights[$0.key] ?? .infinity)) }.max() ?? .infinity
            #expect(worst < 1e-5, "\(model): largest weight difference \(worst)")
            #expect(abs(loss - referenceLoss) < 1e-5)
            // The model predicts held-out rows holding every column, by name, on the master.
            let test = whole.deletingLastPathComponent().appendingPathComponent("test")
            let (columns, rows) = try ShardLayout.loadFeatures(test.appendingPathComponent("X_test.csv").path)
            let prediction = try cluster.client().predict(
                columns: columns, values: rows.flatMap { $0 }, rows: rows.count)
            #expect(prediction.values.count == rows.count)
        }
    }

    @Test("blocks of other rows, a column held twice, an mlp, mini-batches, a dead block: each a named error")
    func badPartitions() async throws {
        try await blocking {
            let (whole, split) = try Self.data(classes: 2)
            let (_, otherSplit) = try Self.data(classes: 2, blocks: 2, seed: 2)
            defer {
                try? FileManager.default.removeItem(at: whole.deletingLastPathComponent())
                try? FileManager.default.removeItem(at: otherSplit.deletingLastPathComponent())
            }
            let cluster = try LocalCluster()
            try cluster.startWorker(name: "worker-1", data: split.appendingPathComponent("worker-1"))
            try cluster.startWorker(name: "worker-2", data: split.appendingPathComponent("worker-1"))
            try cluster.waitFor("2 workers") { $0.workers.filter(\.ready).count == 2 }
            func refused(_ arguments: [String], _ cause: String) {
                #expect {
                    var request = Chimera_V1_FitRequest()
                    request.config = try FitSettings.parse(arguments: arguments + ["--parallelism", "features"])
                        .wire(mode: .parameterServer)
                    _ = try cluster.client().fit(request, timeoutMilliseconds: 30_000)
                } throws: { "\($0)".contains(cause) }
            }
            refused(["--model", "logistic"], "is held by both worker-1 and worker-2")
            refused(["--model", "mlp"], "splits a linear model's columns")
            refused(["--model", "logistic", "--batch-size", "32"], "batch_size must be 0")
            cluster.workers["worker-2"]?.send(signal: SIGKILL)
            try cluster.waitFor("worker-2 dead") { $0.workers.filter { $0.alive }.count == 1 }
            try cluster.startWorker(name: "worker-3", data: otherSplit.appendingPathComponent("worker-2"))
            try cluster.waitFor("2 workers") { $0.workers.filter { $0.ready && $0.alive }.count == 2 }
            refused(["--model", "logistic"], "must hold the same rows with the same labels")
            // A block SIGKILLed mid-fit ends the job, naming it.
            cluster.workers["worker-3"]?.send(signal: SIGKILL)
            try cluster.waitFor("worker-3 dead") { $0.workers.filter { $0.alive }.count == 1 }
            try cluster.startWorker(name: "worker-2", data: split.appendingPathComponent("worker-2"))
            try cluster.waitFor("worker-1 and worker-2") {
                Set($0.workers.filter { $0.ready && $0.alive }.map(\.name)) == ["worker-1", "worker-2"]
            }
            var request = Chimera_V1_FitRequest()
            request.kind = .parameterServer
            request.asynchronous = true
            request.config = try FitSettings.parse(arguments: [
                "--model", "logistic", "--parallelism", "features", "--iterations", "10000000",
            ]).wire(mode: .parameterServer)
            let client = try cluster.client()
            let jobID = try client.fit(request, timeoutMilliseconds: 30_000).jobID
            try cluster.waitFor("10 iterations") { $0.iteration >= 10 }
            cluster.workers["worker-2"]?.send(signal: SIGKILL)
            let status = try ParameterServerProcessTests.waitForJob(client, jobID, timeoutSeconds: 30)
            #expect(status.state == .failed)
            #expect(status.error.contains("feature block") && status.error.contains("worker-2"), "\(status.error)")
        }
    }
}
