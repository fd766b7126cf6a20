import ChimeraCluster
import ChimeraML
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Testing

/// y_train.csv holding class names ("alpha", "yes") instead of numbers, through real processes.
@Suite("Class names as labels, end to end", .serialized)
struct NamedLabelsProcessTests {
    /// Three Gaussian classes named so that their sorted order differs from the generator's numbering.
    static let names = ["beta", "alpha", "gamma"]

    /// Writes two named shards and a named test split (numbered ones when `named` is false); returns the folder.
    static func namedData(named: Bool = true) throws -> URL {
        var spec = SyntheticData.Specification()
        spec.rows = 1_500
        spec.features = 6
        spec.informative = 4
        spec.classes = 3
        spec.seed = 7
        let (train, test) = SyntheticData.split(SyntheticData.generate(spec), testFraction: 0.2, seed: 7)
        func withNames(_ data: Dataset) -> Dataset {
            guard named else { return data }
            return Dataset(
                featureNames: data.featureNames, features: data.features, labelNames: data.labels.map { names[Int($0)] }
            )
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "chimera-named-\(UUID().uuidString.prefix(8))")
        try ShardLayout.write(
            shards: SyntheticData.partition(train, parts: 2).map(withNames), test: withNames(test), to: folder)
        return folder
    }

    static func cluster(mode: String, data: URL, workers: [String]) throws -> LocalCluster {
        let cluster = try LocalCluster(extraArguments: ["--mode", mode])
        for name in workers { try cluster.startWorker(name: name, data: data.appendingPathComponent(name)) }
        try cluster.waitFor("\(workers.count) workers") { $0.workers.filter(\.ready).count == workers.count }
        return cluster
    }

    /// The held-out accuracy by name, and the prediction.
    static func namedAccuracy(_ client: MasterClient, _ data: URL, fanOut: Bool = false) throws -> (
        Double, MasterClient.Prediction
    ) {
        let (columns, rows) = try ShardLayout.loadFeatures(data.appendingPathComponent("test/X_test.csv").path)
        guard
            case .names(let truth) = try ShardLayout.loadLabelColumn(
                data.appendingPathComponent("test/y_test.csv").path)
        else {
            throw ClusterError("the test labels should be names")
        }
        let prediction = try client.predict(
            columns: columns, values: rows.flatMap { $0 }, rows: rows.count, fanOut: fanOut)
        let predicted = prediction.texts
        return (Double(zip(predicted, truth).filter { $0 == $1 }.count) / Double(truth.count), prediction)
    }

    @Test("parameter server: named labels pick softmax, train, and predictions come back as the names")
    func parameterServer() async throws {
        try await blocking {
            let data = try Self.namedData()
            defer { try? FileManager.default.removeItem(at: data) }
            let cluster = try Self.cluster(mode: "parameter-server", data: data, workers: ["worker-1", "worker-2"])
            let client = try cluster.client()
            var request = Chimera_V1_FitRequest()  // no model named, as the Python Chimera's clients send
            request.config.maxIterations = 100
            request.config.eta0 = 0.5
            let reply = try client.fit(request, timeoutMilliseconds: 120_000)
            #expect(reply.state == .succeeded, "\(reply)")
            let saved = try FittedModel.load(from: cluster.modelDirectory.appendingPathComponent("model.json"))
            #expect(saved.model == .softmax, "three names are a multi-class problem")
            #expect(saved.classNames == ["alpha", "beta", "gamma"])
            let (accuracy, prediction) = try Self.namedAccuracy(client, data)
            #expect(prediction.classNames == ["alpha", "beta", "gamma"])
            #expect(prediction.classes == [0, 1, 2])
            #expect(accuracy >= 0.85, "accuracy by name \(accuracy)")
            // The same rows with numbered labels give the same model, whatever the classes' order.
            let numbered = try Self.namedData(named: false)
            defer { try? FileManager.default.removeItem(at: numbered) }
            let reference = try Self.cluster(
                mode: "parameter-server", data: numbered, workers: ["worker-1", "worker-2"])
            #expect(try reference.client().fit(request, timeoutMilliseconds: 120_000).state == .succeeded)
            let (columns, rows) = try ShardLayout.loadFeatures(numbered.appendingPathComponent("test/X_test.csv").path)
            let numberedPrediction = try reference.client().predict(
                columns: columns, values: rows.flatMap { $0 }, rows: rows.count)
            let renamed = numberedPrediction.values.map { Self.names[Int($0)] }
            let agreement = Double(zip(renamed, prediction.texts).filter { $0 == $1 }.count) / Double(renamed.count)
            #expect(agreement >= 0.99, "named and numbered models agree on \(agreement) of the rows")

            // The command-line client compares names with the labels file.
            let predicted = try runChimera([
                "predict", "--master", cluster.controlEndpoint, "--x",
                data.appendingPathComponent("test/X_test.csv").path,
                "--y", data.appendingPathComponent("test/y_test.csv").path,
            ])
            #expect(predicted.status == 0, "\(predicted.stderr)")
            let cliAccuracy = predicted.stdout.split(separator: " ").dropFirst().first.flatMap { Double($0) }
            #expect(cliAccuracy == (accuracy * 10_000).rounded() / 10_000, "\(predicted.stdout)")

            // Linear regression cannot take names: refused with a clear reason, the model unchanged.
            var linear = Chimera_V1_FitRequest()
            linear.config.model = .linearRegression
            #expect(throws: MasterClientError.self) { try client.fit(linear, timeoutMilliseconds: 30_000) }
            #expect(try Self.namedAccuracy(client, data).0 == accuracy)
        }
    }

    @Test("aggregation: classification trees on named labels answer names, from the master and by fan-out")
    func aggregation() async throws {
        try await blocking {
            let data = try Self.namedData()
            defer { try? FileManager.default.removeItem(at: data) }
            let cluster = try Self.cluster(mode: "aggregation", data: data, workers: ["worker-1", "worker-2"])
            let client = try cluster.client()
            var request = Chimera_V1_FitRequest()
            request.kind = .aggregation
            request.config.treesPerWorker = 4
            let reply = try client.fit(request, timeoutMilliseconds: 120_000)
            #expect(reply.state == .succeeded && reply.report.members == 8, "\(reply)")
            let (accuracy, local) = try Self.namedAccuracy(client, data)
            #expect(local.classNames == ["alpha", "beta", "gamma"])
            #expect(accuracy >= 0.85, "accuracy by name \(accuracy)")
            let (fanOutAccuracy, fanOut) = try Self.namedAccuracy(client, data, fanOut: true)
            #expect(fanOut.texts == local.texts && fanOutAccuracy == accuracy)
        }
    }

    @Test(
        "a worker arriving mid-fit with a class the job lacks waits for the next fit instead of joining (named, numbered)",
        arguments: [true, false])
    func lateJoinerWithNewClass(named: Bool) async throws {
        try await blocking {
            let data = try Self.namedData(named: named)
            let newClass = named ? "delta" : "3"
            defer { try? FileManager.default.removeItem(at: data) }
            // worker-3: worker-1's rows, some of them of a fourth class.
            let late = data.appendingPathComponent("worker-3")
            try FileManager.default.createDirectory(at: late, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                at: data.appendingPathComponent("worker-1/X_train.csv"), to: late.appendingPathComponent("X_train.csv"))
            let labels = try String(contentsOf: data.appendingPathComponent("worker-1/y_train.csv"), encoding: .utf8)
                .split(separator: "\n").enumerated().map {
                    $0.offset > 0 && $0.offset % 5 == 0 ? newClass : String($0.element)
                }
            try (labels.joined(separator: "\n") + "\n").write(
                to: late.appendingPathComponent("y_train.csv"), atomically: true, encoding: .utf8)

            let cluster = try LocalCluster()
            for name in ["worker-1", "worker-2"] {
                try cluster.startWorker(name: name, data: data.appendingPathComponent(name), delayMilliseconds: 5)
            }
            try cluster.waitFor("2 workers") { $0.workers.filter(\.ready).count == 2 }
            let client = try cluster.client()
            let job = try ParameterServerProcessTests.asyncFit(client, iterations: 600)
            try cluster.startWorker(name: "worker-3", data: late)
            try cluster.waitFor("worker-3 registered") { $0.workers.contains { $0.name == "worker-3" && $0.alive } }
            #expect(try client.jobStatus(job).state == .running, "worker-3 arrived during the fit")
            let finished = try ParameterServerProcessTests.waitForJob(client, job, timeoutSeconds: 120)
            #expect(finished.state == .succeeded)
            let clocks = Dictionary(uniqueKeysWithValues: finished.report.clocks.map { ($0.name, $0.clock) })
            #expect(
                clocks["worker-1"] == 600 && clocks["worker-2"] == 600 && (clocks["worker-3"] ?? 0) == 0, "\(clocks)")

            try cluster.waitFor("worker-3 ready") { $0.workers.filter(\.ready).count == 3 }
            var next = Chimera_V1_FitRequest()
            next.config.maxIterations = 20
            let reply = try client.fit(next, timeoutMilliseconds: 60_000)
            #expect(reply.state == .succeeded && reply.report.clocks.filter { $0.clock == 20 }.count == 3, "\(reply)")
            let (columns, rows) = try ShardLayout.loadFeatures(data.appendingPathComponent("test/X_test.csv").path)
            let prediction = try client.predict(columns: columns, values: rows.flatMap { $0 }, rows: rows.count)
            if named {
                #expect(prediction.classNames == ["alpha", "beta", "delta", "gamma"])
            } else {
                #expect(prediction.classes == [0, 1, 2, 3])
            }
        }
    }

    @Test("workers holding names and workers holding numbers: the fit is refused, naming both")
    func mixedKinds() async throws {
        try await blocking {
            let data = try Self.namedData()
            defer { try? FileManager.default.removeItem(at: data) }
            // worker-2's labels rewritten as numbers.
            let numeric = data.appendingPathComponent("worker-2/y_train.csv")
            let rows = try String(contentsOf: numeric, encoding: .utf8).split(separator: "\n").dropFirst()
            try (["y"] + rows.map { String(Self.names.firstIndex(of: String($0)) ?? 0) }).joined(separator: "\n")
                .write(to: numeric, atomically: true, encoding: .utf8)
            let cluster = try Self.cluster(mode: "parameter-server", data: data, workers: ["worker-1", "worker-2"])
            let error = #expect(throws: MasterClientError.self) {
                try cluster.client().fit(Chimera_V1_FitRequest(), timeoutMilliseconds: 30_000)
            }
            let text = error.map { "\($0)" } ?? ""
            #expect(text.contains("worker-1") && text.contains("worker-2") && text.contains("class names"), "\(text)")
        }
    }
}
