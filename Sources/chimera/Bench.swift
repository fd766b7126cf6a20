import ArgumentParser
import ChimeraBenchmarks
import ChimeraCluster
import ChimeraML
import ChimeraWire
import Foundation
import ZeroMQ

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks, measured against a reference in the same run.",
        subcommands: [
            BenchTransport.self, BenchParameterServer.self, BenchBagging.self, BenchHTTP.self, BenchHTTPLoad.self,
            BenchTree.self, BenchKernel.self, BenchMLP.self, BenchMLPStep.self, BenchPipeline.self, BenchFeatures.self,
            BenchCodec.self, BenchScale.self,
            BenchJSON.self,
            BenchMasterPredict.self,
            BenchLatencyServer.self, BenchThroughputReceiver.self,
        ]
    )
}

struct BenchTransport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transport",
        abstract: "REQ→ROUTER round trip and PUSH→PULL throughput: our Swift layer vs raw libzmq (zmq-floor C)."
    )

    @Option(help: "The zmq-floor baseline folder (its c/ sources are compiled with gcc).")
    var floorDir = "../shared/baselines/zmq-floor"
    @Option(help: "tcp or ipc.") var transport = "tcp"
    @Option(help: "Interleaved repeats; medians are reported.") var repeats = 3
    @Flag(help: "One repeat with short windows (a smoke test).") var quick = false
    @Option(help: "Also write the Markdown report to this file.") var output: String?
    @Option(help: "Round-trip sizes, comma-separated (8,1k,64k,1m); empty skips the latency part.")
    var latencySizes = "8,1k,64k,1m"
    @Option(help: "Throughput sizes, comma-separated (1k,…,64m); empty skips the throughput part.")
    var throughputSizes = "1k,64k,1m,16m,64m"

    func run() throws {
        var options = TransportBenchmark.Options(floorDirectory: URL(fileURLWithPath: floorDir))
        options.transport = transport
        options.repeats = repeats
        options.latencySizes = latencySizes.split(separator: ",").map(String.init)
        options.throughputSizes = throughputSizes.split(separator: ",").map(String.init)
        if quick {
            options.repeats = 1
            options.latencySeconds = 0.3
            options.throughputMiB = 128
        }
        let report = try TransportBenchmark.run(options) { FileHandle.standardError.write(Data("bench: \($0)\n".utf8)) }
        print(report)
        if let output { try report.write(toFile: output, atomically: true, encoding: .utf8) }
    }
}

struct BenchLatencyServer: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lat-server", shouldDisplay: false)
    @Option var endpoint: String
    @Option var mode = "zc"
    @Option var maxSize = 1 << 20

    func run() throws {
        ChildProcess.dieWithParent(originalParent: getppid())
        try SwiftTransportProbes.latencyServer(endpoint: endpoint, zeroCopy: mode == "zc", maxSize: maxSize)
    }
}

struct BenchThroughputReceiver: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "thr-receiver", shouldDisplay: false)
    @Option var endpoint: String
    @Option var mode = "zc"
    @Option var size: Int
    @Option var count: Int

    func run() throws {
        ChildProcess.dieWithParent(originalParent: getppid())
        try SwiftTransportProbes.throughputReceiver(
            endpoint: endpoint, zeroCopy: mode == "zc", size: size, count: count)
    }
}

/// Worker counts and result reuse of the benchmarks that run bench.py.
struct BaselineRunOptions: ParsableArguments {
    @Option(help: "Worker counts, comma-separated.") var workers = "1,2,4"
    @Flag(help: "Reuse the Python results already in the scratch folder.") var reusePython = false

    var workerCounts: [Int] { workers.split(separator: ",").compactMap { Int($0) } }
}

/// Options of the benchmarks that run the Python Chimera baseline beside ours.
struct BaselineOptions: ParsableArguments {
    @Option(help: "The Python Chimera baseline folder (copied, then run with its own venv).")
    var baselineDir = "../shared/baselines/original-chimera"
    @Option(help: "Scratch folder for the baseline copy, its venv and data.") var scratch = "bench-out"
    @Option(help: "Also write the Markdown report to this file.") var output: String?

    var source: URL { URL(fileURLWithPath: baselineDir) }
    var scratchFolder: URL { URL(fileURLWithPath: scratch) }

    static func log(_ line: String) { FileHandle.standardError.write(Data("bench: \(line)\n".utf8)) }

    /// Prints the report, and writes it to --output when given.
    func emit(_ report: String) throws {
        print(report)
        if let output { try report.write(toFile: output, atomically: true, encoding: .utf8) }
    }
}

struct BenchScale: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract:
            "The parameter server's round as workers are added (N = 1 … 64, tiny shards) vs the raw-libzmq C round at the same N, same run."
    )

    @Option(help: "The zmq-floor folder (for psround).") var floorDir = "../shared/baselines/zmq-floor"
    @Option(help: "Scratch folder for the shards and psround.") var scratch = "bench-out"
    @Option(help: "Worker counts, comma-separated.") var workers = "1,2,4,8,16,32,64"
    @Option(help: "Iterations per fit.") var iterations = 1000
    @Option(help: "Fits (and psround runs, interleaved) per N; medians are reported.") var repeats = 3
    @Option(help: "Also write the Markdown report to this file.") var output: String?

    func run() throws {
        var options = ScaleBenchmark.Options(
            floorDirectory: URL(fileURLWithPath: floorDir), scratch: URL(fileURLWithPath: scratch))
        options.workers = try workers.split(separator: ",").map {
            guard let n = Int($0.trimmingCharacters(in: .whitespaces)), n >= 1 else {
                throw ValidationError("--workers: positive integers, comma-separated")
            }
            return n
        }
        options.iterations = max(10, iterations)
        options.repeats = max(1, repeats)
        let report = try ScaleBenchmark.run(options, log: BaselineOptions.log)
        print(report)
        if let output { try report.write(toFile: output, atomically: true, encoding: .utf8) }
    }
}

struct BenchParameterServer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps",
        abstract:
            "Parameter server vs the Python Chimera (same run) and the raw-libzmq C round: overhead and end to end."
    )

    @OptionGroup var baseline: BaselineOptions
    @OptionGroup var runs: BaselineRunOptions
    @Option(help: "The zmq-floor folder (for psround).") var floorDir = "../shared/baselines/zmq-floor"
    @Option(help: "Iterations per fit.") var iterations = 200
    @Option(help: "Fits (and psround runs, interleaved) per configuration; medians are reported.") var repeats = 9
    @Option(
        help:
            "Iterations of the tiny-shard fits whose steady-state median round is compared with psround's (which runs 1.5 s)."
    )
    var overheadIterations = 2000

    func run() throws {
        var options = ParameterServerBenchmark.Options(
            baselineSource: baseline.source, floorDirectory: URL(fileURLWithPath: floorDir),
            scratch: baseline.scratchFolder)
        options.workers = runs.workerCounts
        options.iterations = iterations
        options.overheadIterations = max(10, overheadIterations)
        options.repeats = max(1, repeats)
        options.reusePython = runs.reusePython
        try baseline.emit(try ParameterServerBenchmark.run(options, log: BaselineOptions.log))
    }
}

struct BenchBagging: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bag",
        abstract:
            "Bagging vs the Python Chimera and scikit-learn's BaggingClassifier (same run): fit, accuracy, HTTP predict."
    )

    @OptionGroup var baseline: BaselineOptions
    @OptionGroup var runs: BaselineRunOptions
    @Option(help: "Fits per worker count (the median is reported).") var fitRepeats = 5

    func run() throws {
        var options = AggregationBenchmark.Options(baselineSource: baseline.source, scratch: baseline.scratchFolder)
        options.workers = runs.workerCounts
        options.fitRepeats = max(fitRepeats, 1)
        options.reusePython = runs.reusePython
        try baseline.emit(try AggregationBenchmark.run(options, log: BaselineOptions.log))
    }
}

struct BenchHTTP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract:
            "HTTP predict (1,000-row batches, 1 and 32 clients): chimera-gateway vs the Python Chimera, same run, same client."
    )

    @OptionGroup var baseline: BaselineOptions
    @Option(help: "Concurrent clients, comma-separated.") var clients = "1,32"

    func run() throws {
        var options = GatewayPredictBenchmark.Options(baselineSource: baseline.source, scratch: baseline.scratchFolder)
        options.concurrency = clients.split(separator: ",").compactMap { Int($0) }
        try baseline.emit(try GatewayPredictBenchmark.run(options, log: BaselineOptions.log))
    }
}

struct BenchHTTPLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http-load",
        abstract: "POST a JSON file (or GET) to a URL from N keep-alive clients; print latency and throughput.")
    @Option(help: "The URL.") var url: String
    @Option(help: "The request body (a file); without it, GET.") var body: String?
    @Option(help: "Concurrent clients.") var clients = 1
    @Option(help: "Requests per client.") var requests = 100

    func run() throws {
        let bytes = try body.map { Array(try Data(contentsOf: URL(fileURLWithPath: $0))) } ?? []
        let result = try HTTPLoad.run(
            url: url, method: body == nil ? "GET" : "POST", body: bytes, clients: clients, requests: requests)
        print(
            String(
                format: "%d clients × %d requests: median %.3f ms, p99 %.3f ms, %.1f requests/s, %d failed", clients,
                requests,
                result.percentile(0.5) * 1e3, result.percentile(0.99) * 1e3, result.requestsPerSecond, result.failures))
    }
}

struct BenchTree: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tree",
        abstract: "Time binning, growing and predicting with one CART tree on a synthetic shard (best of N).")
    @Option var rows = 40_000
    @Option var features = 21
    @Option var maxDepth = 5
    @Option var maxLeafNodes = 15
    @Option var repeats = 10

    func run() throws {
        print(
            try MicroBenchmarks.tree(
                rows: rows, features: features, maxDepth: maxDepth, maxLeafNodes: maxLeafNodes, repeats: repeats))
    }
}

struct BenchKernel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel", abstract: "Time one full-batch loss+gradient pass of a linear model (ns per row).")
    @Option var rows = 200_000
    @Option var features = 21
    @Option var model = "logistic"
    @Option var repeats = 20

    func run() throws {
        guard let kind = ModelKind(rawValue: model) else {
            throw ValidationError("--model: linear, logistic, softmax or svm")
        }
        print(MicroBenchmarks.kernel(rows: rows, features: features, model: kind, repeats: repeats))
    }
}

struct BenchMLP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlp",
        abstract:
            "MLP training on the parameter server vs PyTorch DDP (gloo, CPU) and the raw-libzmq C round, same run."
    )
    @Option(help: "The PyTorch DDP baseline folder (its venv and data are made on first use).")
    var ddpDir = "../shared/baselines/pytorch-ddp"
    @Option(help: "The zmq-floor folder (for psround).") var floorDir = "../shared/baselines/zmq-floor"
    @Option(help: "Scratch folder for compiled floor programs.") var scratch = "bench-out"
    @OptionGroup var runs: BaselineRunOptions
    @Option(help: "Runs of each system per configuration, interleaved; medians are reported.") var repeats = 5
    @Option(help: "Models as hidden:steps, semicolon-separated.") var models = "256,256:500;1024,1024:200"
    @Option(help: "Also write the Markdown report to this file.") var output: String?

    func run() throws {
        var options = MLPBenchmark.Options(
            ddpDirectory: URL(fileURLWithPath: ddpDir), floorDirectory: URL(fileURLWithPath: floorDir),
            scratch: URL(fileURLWithPath: scratch))
        options.workers = runs.workerCounts
        options.repeats = max(1, repeats)
        options.models = models.split(separator: ";").compactMap { entry in
            let parts = entry.split(separator: ":")
            guard parts.count == 2, let steps = Int(parts[1]) else { return nil }
            return (String(parts[0]), steps)
        }
        let report = try MLPBenchmark.run(options, log: BaselineOptions.log)
        print(report)
        if let output { try report.write(toFile: output, atomically: true, encoding: .utf8) }
    }
}

struct BenchPipeline: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract:
            "Pipeline stages vs PyTorch's pipelining (gloo, CPU), same run: samples/s, losses, idle vs GPipe's bubble.")
    @Option(help: "The folder whose .venv has torch (shared/baselines/pytorch-ddp makes it).")
    var pythonDir = "../shared/baselines/pytorch-ddp"
    @Option(help: "The PyTorch pipelining script.") var script = "Benchmarks/pytorch_pipeline.py"
    @Option(help: "Scratch folder for the data files.") var scratch = "bench-out"
    @Option(help: "Runs of each system per configuration, interleaved; medians are reported.") var repeats = 3
    @Option(help: "Stage counts K, comma-separated.") var stages = "2,4"
    @Option(help: "Micro-batch counts M, comma-separated.") var microBatches = "4,8,16"
    @Option(help: "Schedules, comma-separated.") var schedules = "gpipe,1f1b"
    @Option(help: "Hidden layers.") var hidden = "1024,1024,1024,1024,1024"
    @Option(help: "Rows in the batch.") var rows = 256
    @Option(help: "Steps per run.") var steps = 12
    @Option(help: "Also write the Markdown report to this file.") var output: String?

    func run() throws {
        var options = PipelineBenchmark.Options(
            pythonDirectory: URL(fileURLWithPath: pythonDir), script: URL(fileURLWithPath: script),
            scratch: URL(fileURLWithPath: scratch))
        options.repeats = max(1, repeats)
        options.stages = stages.split(separator: ",").compactMap { Int($0) }
        options.microBatches = microBatches.split(separator: ",").compactMap { Int($0) }
        options.schedules = schedules.split(separator: ",").map(String.init)
        options.hidden = hidden.split(separator: ",").compactMap { Int($0) }
        options.rows = rows
        options.steps = max(3, steps)
        try FileManager.default.createDirectory(at: options.scratch, withIntermediateDirectories: true)
        let report = try PipelineBenchmark.run(options, log: BaselineOptions.log)
        print(report)
        if let output { try report.write(toFile: output, atomically: true, encoding: .utf8) }
    }
}

struct BenchFeatures: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Feature-partitioned vs data-parallel logistic regression on a tall and a wide data set, same run.")
    @Option(help: "Scratch folder for the data.") var scratch = "bench-out"
    @Option(help: "Workers.") var workers = 4
    @Option(help: "Runs of each per shape, interleaved; medians are reported.") var repeats = 3
    @Option(help: "Iterations per fit.") var iterations = 20
    @Option(help: "Shapes as rows x features, comma-separated.") var shapes = "10000x2000,1000x20000"
    @Option(help: "Also write the Markdown report to this file.") var output: String?

    func run() throws {
        var options = FeaturePartitionBenchmark.Options(scratch: URL(fileURLWithPath: scratch))
        options.workers = max(1, workers)
        options.repeats = max(1, repeats)
        options.iterations = max(3, iterations)
        options.shapes = shapes.split(separator: ",").compactMap { shape in
            let parts = shape.split(separator: "x").compactMap { Int($0) }
            return parts.count == 2 ? (parts[0], parts[1]) : nil
        }
        try FileManager.default.createDirectory(at: options.scratch, withIntermediateDirectories: true)
        let report = try FeaturePartitionBenchmark.run(options, log: BaselineOptions.log)
        print(report)
        if let output { try report.write(toFile: output, atomically: true, encoding: .utf8) }
    }
}

struct BenchMLPStep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlp-step", abstract: "Time one MLP worker step: drawing a mini-batch and its loss+gradient pass.")
    @Option var rows = 100_000
    @Option var features = 64
    @Option var hidden = "256,256"
    @Option var classes = 10
    @Option var batch = 64
    @Option var repeats = 200

    func run() throws {
        MLP.setBLASThreads(1)
        print(
            try MicroBenchmarks.mlpStep(
                rows: rows, features: features, hidden: hidden.split(separator: ",").compactMap { Int($0) },
                classes: classes, batch: batch, repeats: max(1, repeats)))
    }
}

struct BenchCodec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codec", abstract: "Encode + decode of the parameter server's per-round messages (µs per message)."
    )
    @Option var repeats = 20_000

    func run() throws { print(try MicroBenchmarks.codec(repeats: repeats)) }
}

struct BenchJSON: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "json",
        abstract:
            "Reading a predict body (JSON): the gateway's reader vs Foundation's JSONDecoder and JSONSerialization.")
    @Option(help: "A predict body: {\"X_pred_columns\": [...], \"X_pred_rows\": [[...]]}.") var body: String
    @Option var repeats = 200

    func run() throws {
        print(
            try MicroBenchmarks.predictBody(try [UInt8](Data(contentsOf: URL(fileURLWithPath: body))), repeats: repeats)
        )
    }
}

struct BenchMasterPredict: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "master-predict",
        abstract: "Predict a JSON body's rows straight on the master's control socket (no gateway); print latency.")
    @Option(help: "The master's control endpoint.") var master = "tcp://127.0.0.1:5557"
    @Option(help: "A predict body: {\"X_pred_columns\": [...], \"X_pred_rows\": [[...]]}.") var body: String
    @Option var requests = 200
    @OptionGroup var curve: CurveClientOptions

    func run() throws {
        let object =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: body))) as? [String: Any]
        guard let columns = object?["X_pred_columns"] as? [String], let rows = object?["X_pred_rows"] as? [[Double]]
        else {
            throw CommandError("\(body) has no X_pred_columns and X_pred_rows")
        }
        let values = rows.flatMap { $0.map(Float.init) }
        let client = try MasterClient(endpoint: master, curve: try curve.settings())
        var latencies: [Double] = []
        for index in 0..<(requests + 3) {
            let start = monotonicSeconds()
            _ = try client.predict(columns: columns, values: values, rows: rows.count)
            if index >= 3 { latencies.append(monotonicSeconds() - start) }
        }
        latencies.sort()
        print(
            String(
                format: "%d rows × %d requests: median %.3f ms, p99 %.3f ms", rows.count, requests,
                Summary(latencies).median * 1e3, Summary(latencies).p99 * 1e3))
    }
}
