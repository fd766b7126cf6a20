import ChimeraCluster
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Testing

/// `proto/examples/python_worker.py` — a worker written from proto/README.md alone — next to Swift workers
/// against a real master: the page is complete enough to take part in every kind of job.
@Suite("A Python worker written from proto/README.md, end to end", .serialized, .enabled(if: PythonWorker.shouldRun))
struct ForeignWorkerProcessTests {
    static let breastCancer = ParameterServerProcessTests.breastCancer

    /// A master with Swift workers on `swift` shards and Python workers on `python` shards (names worker-K).
    static func cluster(mode: String, swift: [Int], python: [Int]) throws -> LocalCluster {
        let runtime = try #require(PythonWorker.runtime, "\(PythonWorker.missing)")
        let cluster = try LocalCluster(extraArguments: ["--mode", mode])
        for index in swift {
            try cluster.startWorker(
                name: "worker-\(index)", data: breastCancer.appendingPathComponent("worker-\(index)"))
        }
        for index in python {
            try runtime.start(
                in: cluster, name: "worker-\(index)", data: breastCancer.appendingPathComponent("worker-\(index)"))
        }
        let count = swift.count + python.count
        try cluster.waitFor("\(count) workers") { $0.workers.filter(\.ready).count == count }
        return cluster
    }

    static func testSet() throws -> (columns: [String], values: [Float], rows: Int, truth: [Float]) {
        let (columns, rows) = try ShardLayout.loadFeatures(breastCancer.appendingPathComponent("test/X_test.csv").path)
        let truth = try ShardLayout.loadLabels(breastCancer.appendingPathComponent("test/y_test.csv").path)
        return (columns, rows.flatMap { $0 }, rows.count, truth)
    }

    /// A BSP fit (logistic regression unless `config` says otherwise), then P(class 1) of every held-out row.
    static func logisticProbabilities(_ cluster: LocalCluster, config: Chimera_V1_FitConfig? = nil) throws -> (
        report: Chimera_V1_FitReport, p: [Float], accuracy: Double
    ) {
        let client = try cluster.client()
        var request = Chimera_V1_FitRequest()
        request.config.maxIterations = 100
        request.config.eta0 = 0.5
        if let config { request.config = config }
        let reply = try client.fit(request, timeoutMilliseconds: 120_000)
        #expect(reply.state == .succeeded, "\(reply)")
        let test = try testSet()
        let prediction = try client.predict(
            columns: test.columns, values: test.values, rows: test.rows, probabilities: true)
        let proba = try #require(prediction.probabilities)
        let accuracy = Double(zip(prediction.labels, test.truth).filter { $0 == Double($1) }.count) / Double(test.rows)
        return (reply.report, stride(from: 1, to: proba.count, by: 2).map { proba[$0] }, accuracy)
    }

    @Test("parameter server: BSP with a Python worker gives the model of Swift workers only (1e-4)")
    func parameterServer() async throws {
        try await blocking {
            let mixed = try Self.logisticProbabilities(
                Self.cluster(mode: "parameter-server", swift: [1, 3], python: [2, 4]))
            #expect(mixed.report.iterations == 100)
            #expect(mixed.report.clocks.count == 4 && mixed.report.clocks.allSatisfy { $0.clock == 100 && $0.alive })
            #expect(mixed.accuracy >= 0.95)

            let swiftOnly = try Self.logisticProbabilities(
                Self.cluster(mode: "parameter-server", swift: [1, 2, 3, 4], python: []))
            #expect(abs(mixed.report.finalLoss - swiftOnly.report.finalLoss) <= 1e-4 * swiftOnly.report.finalLoss)
            let largest = zip(mixed.p, swiftOnly.p).map { abs($0 - $1) }.max() ?? 1
            #expect(largest <= 1e-4, "P(class 1) differs by up to \(largest)")
        }
    }

    @Test("parameter server, MLP: BSP with Python workers gives the network of Swift workers only (1e-4)")
    func neuralNetwork() async throws {
        try await blocking {
            // tanh layers and an L2 penalty: the page's layout, activation and bias mask all matter.
            let config = try FitSettings.parse(arguments: [
                "--model", "mlp", "--hidden", "12,6", "--activation", "tanh", "--alpha", "0.001", "--eta0", "0.3",
                "--momentum", "0.5", "--iterations", "60",
            ]).wire(mode: .parameterServer)
            let mixed = try Self.logisticProbabilities(
                Self.cluster(mode: "parameter-server", swift: [1, 3], python: [2, 4]), config: config)
            #expect(mixed.report.iterations == 60)
            #expect(mixed.report.clocks.count == 4 && mixed.report.clocks.allSatisfy { $0.clock == 60 && $0.alive })
            #expect(mixed.accuracy >= 0.93)

            let swiftOnly = try Self.logisticProbabilities(
                Self.cluster(mode: "parameter-server", swift: [1, 2, 3, 4], python: []), config: config)
            #expect(abs(mixed.report.finalLoss - swiftOnly.report.finalLoss) <= 1e-4 * swiftOnly.report.finalLoss)
            let largest = zip(mixed.p, swiftOnly.p).map { abs($0 - $1) }.max() ?? 1
            #expect(largest <= 1e-4, "P(class 1) differs by up to \(largest)")
        }
    }

    @Test("aggregation: Python workers' trees join the ensemble; fan-out answers agree with the master's")
    func aggregation() async throws {
        try await blocking {
            let cluster = try Self.cluster(mode: "aggregation", swift: [1, 2], python: [3, 4])
            let client = try cluster.client()
            var request = Chimera_V1_FitRequest()
            request.kind = .aggregation
            request.config.treesPerWorker = 4
            request.config.maxFeatures = "sqrt"
            let reply = try client.fit(request, timeoutMilliseconds: 120_000)
            #expect(reply.state == .succeeded, "\(reply)")
            #expect(reply.report.members == 16, "4 workers × 4 trees, Python ones included")
            #expect(reply.report.failedWorkers.isEmpty)

            let test = try Self.testSet()
            let local = try client.predict(
                columns: test.columns, values: test.values, rows: test.rows, kind: .aggregation)
            let fanOut = try client.predict(
                columns: test.columns, values: test.values, rows: test.rows, kind: .aggregation, fanOut: true)
            let accuracy =
                Double(zip(local.values, test.truth).filter { ($0 > 0.5 ? 1 : 0) == Double($1) }.count)
                / Double(test.rows)
            #expect(accuracy >= 0.9)
            let largest = zip(local.values, fanOut.values).map { abs($0 - $1) }.max() ?? 1
            #expect(largest <= 1e-5, "fan-out means differ from the master's ensemble by up to \(largest)")
        }
    }

    @Test("class names in y_train.csv: a Python worker sends label_names and trains on the job's class indices")
    func namedLabels() async throws {
        try await blocking {
            let runtime = try #require(PythonWorker.runtime, "\(PythonWorker.missing)")
            let data = try NamedLabelsProcessTests.namedData()
            defer { try? FileManager.default.removeItem(at: data) }
            func fit(python: Bool) throws -> (accuracy: Double, loss: Double) {
                let cluster = try LocalCluster(extraArguments: ["--mode", "parameter-server"])
                try cluster.startWorker(name: "worker-1", data: data.appendingPathComponent("worker-1"))
                if python {
                    try runtime.start(in: cluster, name: "worker-2", data: data.appendingPathComponent("worker-2"))
                } else {
                    try cluster.startWorker(name: "worker-2", data: data.appendingPathComponent("worker-2"))
                }
                try cluster.waitFor("2 workers") { $0.workers.filter(\.ready).count == 2 }
                let client = try cluster.client()
                var request = Chimera_V1_FitRequest()
                request.config.maxIterations = 50
                request.config.eta0 = 0.5
                let reply = try client.fit(request, timeoutMilliseconds: 120_000)
                #expect(reply.state == .succeeded && reply.report.clocks.allSatisfy { $0.clock == 50 }, "\(reply)")
                return (try NamedLabelsProcessTests.namedAccuracy(client, data).0, reply.report.finalLoss)
            }
            let mixed = try fit(python: true)
            let swiftOnly = try fit(python: false)
            #expect(mixed.accuracy >= 0.85 && mixed.accuracy == swiftOnly.accuracy, "\(mixed) vs \(swiftOnly)")
            #expect(abs(mixed.loss - swiftOnly.loss) <= 1e-4 * swiftOnly.loss, "\(mixed) vs \(swiftOnly)")
        }
    }
}

/// The Python side: an interpreter with pyzmq, protobuf and NumPy, and bindings generated by protoc.
struct PythonWorker: Sendable {
    let interpreter: String
    let bindings: URL

    static let script = repositoryRoot.appendingPathComponent("proto/examples/python_worker.py")
    static let missing =
        "needs protoc and a python3 with zmq, google.protobuf and numpy (Debian: protobuf-compiler python3-zmq python3-protobuf python3-numpy)"

    /// Runs when the tools are here; on CI they must be (`.ci/run` installs them), so it runs and fails loudly.
    static var shouldRun: Bool { runtime != nil || ProcessInfo.processInfo.environment["CI"] != nil }

    static let runtime: PythonWorker? = {
        guard
            let interpreter = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: {
                run($0, ["-c", "import zmq, numpy, google.protobuf"])
            })
        else { return nil }
        let bindings = FileManager.default.temporaryDirectory.appendingPathComponent(
            "chimera-pb2-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: bindings, withIntermediateDirectories: true)
        let proto = repositoryRoot.appendingPathComponent("proto")
        guard
            run(
                "/usr/bin/env",
                [
                    "protoc", "--python_out=\(bindings.path)", "-I", proto.path,
                    proto.appendingPathComponent("chimera/v1/chimera.proto").path,
                ])
        else { return nil }
        return PythonWorker(interpreter: interpreter, bindings: bindings)
    }()

    func start(in cluster: LocalCluster, name: String, data: URL) throws {
        let child = try ChildProcess(
            name: name,
            arguments: [Self.script.path, "--master", cluster.workersEndpoint, "--data", data.path, "--name", name],
            prefix: "[\(name) py]", executable: URL(fileURLWithPath: interpreter),
            environment: ["PYTHONPATH": bindings.path])
        cluster.adopt(child, name: name)
    }

    private static func run(_ executable: String, _ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}
