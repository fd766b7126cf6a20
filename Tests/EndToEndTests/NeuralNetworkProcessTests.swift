import ChimeraCluster
import ChimeraML
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Neural networks on the parameter server through the real processes: `chimera local` and HTTP,
/// a master killed mid-fit and resumed, model files that do not fit their network.
@Suite("Neural networks, end to end", .serialized)
struct NeuralNetworkProcessTests {
    static let digits = repositoryRoot.appendingPathComponent("deploy/data/digits")

    /// A master and two ready workers on the first two digits shards.
    static func digitsCluster(heartbeatMilliseconds: Int = 200, delayMilliseconds: Int = 0) throws -> LocalCluster {
        let cluster = try LocalCluster(heartbeatMilliseconds: heartbeatMilliseconds)
        for index in 1...2 {
            try cluster.startWorker(
                name: "worker-\(index)", data: digits.appendingPathComponent("worker-\(index)"),
                delayMilliseconds: delayMilliseconds)
        }
        try cluster.waitFor("2 workers") { $0.workers.filter(\.ready).count == 2 }
        return cluster
    }

    /// The held-out share a prediction reply gets right.
    static func accuracy(_ predicted: [Double], _ truth: [Float]) -> Double {
        Double(zip(predicted, truth).filter { $0 == Double($1) }.count) / Double(truth.count)
    }

    @Test(
        "an MLP on the digits through chimera local and HTTP reaches ≥ 0.97 held-out; bad shapes are 400s naming the cause"
    )
    func digitsThroughHTTP() async throws {
        try await blocking {
            let local = try ChildProcess(
                name: "local", arguments: ["local", "--data", Self.digits.path, "--port", "0"], prefix: "[local]",
                captureOutput: true, executable: try chimeraExecutable())
            defer {
                local.send(signal: SIGKILL)
                local.wait(timeoutSeconds: 5)
            }
            var summary: String?
            while summary == nil, let line = local.nextLine(timeoutSeconds: 120) {
                if line.hasPrefix("chimera-local ") { summary = line }
            }
            let url = try #require(summary?.split(separator: " ").first { $0.hasPrefix("url=") }?.dropFirst(4))
            let fit = "\(url)/v1/chimera/parameter-server/fit"
            let body = Data(
                #"{"model": "mlp", "hidden": [64], "batch_size": 32, "eta0": 0.1, "momentum": 0.9, "penalty": "none", "iterations": 300}"#
                    .utf8)
            var (status, answer) = try LocalClusterCommandTests.post(fit, body)
            for _ in 0..<100 where status == 503 {
                usleep(100_000)
                (status, answer) = try LocalClusterCommandTests.post(fit, body)
            }
            #expect(status == 200, "\(answer)")

            let (columns, rows) = try ShardLayout.loadFeatures(
                Self.digits.appendingPathComponent("test/X_test.csv").path)
            let truth = try ShardLayout.loadLabels(Self.digits.appendingPathComponent("test/y_test.csv").path)
            let request = try JSONSerialization.data(withJSONObject: [
                "X_pred_columns": columns, "X_pred_rows": rows.map { $0.map(Double.init) },
            ])
            let (predictStatus, predictBody) = try LocalClusterCommandTests.post(
                "\(url)/v1/chimera/parameter-server/predict", request)
            #expect(predictStatus == 200)
            let object = try JSONSerialization.jsonObject(with: Data(predictBody.utf8)) as? [String: Any]
            let predicted = try #require(object?["y_pred_rows"] as? [Double])
            #expect(predicted.count == 360)
            #expect(Self.accuracy(predicted, truth) >= 0.97, "held-out accuracy \(Self.accuracy(predicted, truth))")

            // Bad shapes end at the gateway or the master with the cause, and the cluster stays ready.
            for (bad, cause) in [
                (#"{"model": "mlp", "hidden": [64, 0]}"#, "hidden must be"),
                (#"{"model": "mlp", "hidden": "64,x"}"#, "hidden must be"),
                (#"{"model": "mlp", "activation": "sigmoid"}"#, "activation must be"),
                (#"{"model": "mlp", "hidden": [65536, 65536, 65536]}"#, "frame limit"),
            ] {
                let (code, text) = try LocalClusterCommandTests.post(fit, Data(bad.utf8))
                #expect(code == 400 && text.contains(cause), "\(bad): \(code) \(text)")
            }
            let (again, _) = try LocalClusterCommandTests.post(
                fit, Data(#"{"model": "mlp", "hidden": [16], "iterations": 5}"#.utf8))
            #expect(again == 200)
        }
    }

    @Test("bfloat16 and float16 frames: half the bytes per iteration, held-out accuracy within 0.5 point of float32")
    func compactFrames() async throws {
        try await blocking {
            let cluster = try Self.digitsCluster()
            let (columns, rows) = try ShardLayout.loadFeatures(
                Self.digits.appendingPathComponent("test/X_test.csv").path)
            let truth = try ShardLayout.loadLabels(Self.digits.appendingPathComponent("test/y_test.csv").path)
            var results: [String: (accuracy: Double, bytesPerIteration: Double)] = [:]
            for format in ["float32", "bfloat16", "float16"] {
                var request = Chimera_V1_FitRequest()
                request.kind = .parameterServer
                request.config = try FitSettings.parse(arguments: [
                    "--model", "mlp", "--hidden", "64", "--batch-size", "32", "--eta0", "0.1", "--momentum", "0.9",
                    "--penalty", "none", "--iterations", "300", "--wire-dtype", format,
                ]).wire(mode: .parameterServer)
                let reply = try cluster.client().fit(request, timeoutMilliseconds: 120_000)
                #expect(reply.state == .succeeded, "\(format)")
                let prediction = try cluster.client().predict(
                    columns: columns, values: rows.flatMap { $0 }, rows: rows.count)
                results[format] = (
                    Self.accuracy(prediction.values, truth),
                    Double(reply.report.bytesReceived + reply.report.bytesSent) / Double(reply.report.iterations)
                )
            }
            let reference = try #require(results["float32"])
            #expect(reference.accuracy >= 0.95)
            for format in ["bfloat16", "float16"] {
                let compact = try #require(results[format])
                #expect(
                    compact.accuracy >= reference.accuracy - 0.005,
                    "\(format): \(compact.accuracy) vs float32 \(reference.accuracy)")
                // 4,810 parameters in a push and a reply per worker: the frames are most of the bytes.
                #expect(
                    compact.bytesPerIteration < 0.6 * reference.bytesPerIteration,
                    "\(format): \(compact.bytesPerIteration) bytes per iteration vs \(reference.bytesPerIteration)")
            }
        }
    }

    @Test("a 300 k-parameter network to two workers: the round's weights go as one shared frame, and train")
    func sharedWeightFrames() async throws {
        try await blocking {
            let cluster = try Self.digitsCluster()
            var request = Chimera_V1_FitRequest()
            request.kind = .parameterServer
            // 64-512-512-10: 301,066 parameters, above the master's shared-frame size.
            request.config = try FitSettings.parse(arguments: [
                "--model", "mlp", "--hidden", "512,512", "--iterations", "15", "--eta0", "0.05", "--penalty", "none",
            ]).wire(mode: .parameterServer)
            request.config.recordTimeline = true
            let reply = try cluster.client().fit(request, timeoutMilliseconds: 120_000)
            #expect(reply.state == .succeeded)
            #expect(reply.report.clocks.filter { $0.clock == 15 && $0.alive }.count == 2)
            let losses = reply.report.timeline.dropFirst().map(\.trainLoss)
            #expect(losses.count == 15 && losses.last! < losses.first!, "\(losses)")
            #expect(try cluster.client().status().rejectedMessages == 0)
        }
    }

    @Test("a worker that cannot hold the model ends the job at once with its reason; the cluster stays ready")
    func modelTooLargeForAWorker() async throws {
        try await blocking {
            let cluster = try LocalCluster()
            try cluster.startWorker(name: "worker-1", data: Self.digits.appendingPathComponent("worker-1"))
            try cluster.startWorker(
                name: "worker-2", data: Self.digits.appendingPathComponent("worker-2"),
                extraArguments: ["--max-memory-mib", "2"])
            try cluster.waitFor("2 workers") { $0.workers.filter(\.ready).count == 2 }
            var request = Chimera_V1_FitRequest()
            request.kind = .parameterServer
            // 64-1024-1024-10: 1.1 M parameters, ~18 MiB a worker.
            request.config = try FitSettings.parse(arguments: [
                "--model", "mlp", "--hidden", "1024,1024", "--iterations", "1000000",
            ]).wire(mode: .parameterServer)
            #expect {
                try cluster.client().fit(request, timeoutMilliseconds: 60_000)
            } throws: { error in
                let text = "\(error)"
                return text.contains("worker-2 cannot allocate the model") && text.contains("this worker has 2 MiB")
            }
            // The next fit, small enough, runs on both.
            request.config = try FitSettings.parse(arguments: ["--model", "mlp", "--hidden", "8", "--iterations", "20"])
                .wire(mode: .parameterServer)
            let reply = try cluster.client().fit(request, timeoutMilliseconds: 60_000)
            #expect(reply.state == .succeeded && reply.report.clocks.filter(\.alive).count == 2)
        }
    }

    @Test(
        "an Adam-trained MLP: master SIGKILLed mid-fit resumes from its checkpoint (weights and moments) and serves the model"
    )
    func resumeWithAdam() async throws {
        try await blocking {
            let cluster = try Self.digitsCluster(delayMilliseconds: 5)
            var request = Chimera_V1_FitRequest()
            request.kind = .parameterServer
            request.asynchronous = true
            request.config = try FitSettings.parse(arguments: [
                "--model", "mlp", "--hidden", "32", "--optimizer", "adam", "--eta0", "0.005", "--batch-size", "32",
                "--iterations", "400", "--checkpoint-every", "10",
            ]).wire(mode: .parameterServer)
            let jobID = try cluster.client().fit(request, timeoutMilliseconds: 30_000).jobID
            try cluster.waitFor("30 iterations") { $0.iteration >= 30 }
            try cluster.restartMaster(extraArguments: ["--resume"])
            let client = try cluster.client()
            let resumed = try cluster.waitFor(timeoutSeconds: 60, "the job to resume with 2 workers") {
                $0.currentJobID == jobID && $0.workers.filter(\.ready).count == 2
            }
            #expect(resumed.iteration >= 30, "resumed from the checkpoint: \(resumed.iteration)")
            let status = try ParameterServerProcessTests.waitForJob(client, jobID, timeoutSeconds: 120)
            #expect(status.state == .succeeded, "\(status.error)")
            #expect(status.report.iterations == 400)
            let saved = try FittedModel.load(from: cluster.modelDirectory.appendingPathComponent("model.json"))
            #expect(saved.model == .mlp && saved.configuration.hidden == [32])
            #expect((saved.optimizerState?.steps ?? 0) >= 400, "Adam's step count went on from the checkpoint")

            let (columns, rows) = try ShardLayout.loadFeatures(
                Self.digits.appendingPathComponent("test/X_test.csv").path)
            let truth = try ShardLayout.loadLabels(Self.digits.appendingPathComponent("test/y_test.csv").path)
            let prediction = try client.predict(columns: columns, values: rows.flatMap { $0 }, rows: rows.count)
            #expect(
                Self.accuracy(prediction.values, truth) >= 0.93, "accuracy \(Self.accuracy(prediction.values, truth))")

            // A model file whose weights do not fit its network is refused at --resume (the master
            // says why and serves no model), never served with the wrong shape.
            var broken = saved
            broken.weights.removeLast(7)
            let file = cluster.modelDirectory.appendingPathComponent("model.json")
            try broken.save(to: file)
            try? FileManager.default.removeItem(at: cluster.modelDirectory.appendingPathComponent("checkpoint.json"))
            #expect {
                try FittedModel.load(from: file)
            } throws: { error in
                "\(error)".contains(
                    "holds \(saved.weights.count - 7) weights, its model (mlp 64-32-10 relu, softmax) has")
            }
            try cluster.restartMaster(extraArguments: ["--resume"])
            #expect {
                try cluster.client().predict(columns: columns, values: rows.flatMap { $0 }, rows: rows.count)
            } throws: { error in
                "\(error)".contains("no model yet")
            }
        }
    }
}
