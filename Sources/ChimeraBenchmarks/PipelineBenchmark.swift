import ChimeraCluster
import ChimeraML
import ChimeraWire
public import Foundation

/// `chimera bench pipeline`: Chimera's pipeline stages against PyTorch's own pipeline parallelism
/// (`torch.distributed.pipelining`, gloo on CPU; `Benchmarks/pytorch_pipeline.py`, the venv of
/// `shared/baselines/pytorch-ddp`) in the same invocation, runs interleaved, medians of repeats. Both
/// train the same network from the same starting weights on the same batch (full-batch gradient
/// descent, plain SGD), split the same way into the same stages and micro-batches, so their losses
/// must agree step for step. Reported: samples per second (steps 2…S), the largest loss difference,
/// and each stage's idle share against GPipe's bubble (K − 1)/(M + K − 1).
public enum PipelineBenchmark {
    public struct Options: Sendable {
        public var pythonDirectory: URL
        public var script: URL
        public var scratch: URL
        public var repeats = 3
        public var stages = [2, 4]
        public var microBatches = [4, 8, 16]
        public var schedules = ["gpipe", "1f1b"]
        public var hidden = [1024, 1024, 1024, 1024, 1024]
        public var rows = 256
        public var steps = 12
        /// Small enough for five layers of 1024 on raw synthetic features (0.05 diverges).
        public var learningRate = 0.005

        public init(pythonDirectory: URL, script: URL, scratch: URL) {
            self.pythonDirectory = pythonDirectory
            self.script = script
            self.scratch = scratch
        }
    }

    struct Outcome {
        var samplesPerSecond: Double
        var losses: [Double]
        var idle: [Double] = []
    }

    public static func run(_ options: Options, log: (String) -> Void) throws -> String {
        let python = options.pythonDirectory.appendingPathComponent(".venv/bin/python")
        guard FileManager.default.fileExists(atPath: python.path) else {
            throw BenchmarkError(
                "no PyTorch venv at \(python.path): run `chimera bench mlp` once (it makes it) or run.sh there")
        }
        let network = try MLP(inputs: 64, hidden: options.hidden, activation: .relu, head: .softmax(classes: 10))
        let seed: UInt64 = 11
        // The batch, as a shard folder for the workers and raw float32 files for PyTorch: read back from
        // the CSV so that both see the same floats.
        let folder = options.scratch.appendingPathComponent("pipeline-data")
        try? FileManager.default.removeItem(at: folder)
        var spec = SyntheticData.Specification()
        spec.rows = options.rows
        spec.features = 64
        spec.classes = 10
        spec.seed = 3
        try ShardLayout.write(shards: [SyntheticData.generate(spec)], test: nil, to: folder)
        let shard = folder.appendingPathComponent("worker-1")
        let data = try ShardLayout.loadShard(shard)
        let files = (
            x: folder.appendingPathComponent("x.f32"), y: folder.appendingPathComponent("y.f32"),
            w: folder.appendingPathComponent("w.f32")
        )
        try data.features.withUnsafeBytes { try Data($0).write(to: files.x) }
        try data.labels.withUnsafeBytes { try Data($0).write(to: files.y) }
        try network.initialWeights(seed: seed).withUnsafeBytes { try Data($0).write(to: files.w) }
        let sizes = network.layerSizes.map(String.init).joined(separator: ",")
        var out =
            "### Pipeline parallelism: Chimera's stages vs PyTorch's pipelining (gloo, CPU), same run\n\n"
            + "\(network.summary) (\(network.parameterCount) parameters), the same \(options.rows)-row batch every step (full-batch gradient descent, SGD lr \(options.learningRate)), \(options.steps) steps, the same starting weights; samples/s over steps 2…S; \(options.repeats) interleaved repeats, medians. Idle: each stage's time waiting for a neighbour ÷ (compute + idle), mean over stages (the last stage's, which waits for nothing at its own pace, included); GPipe's bubble (K − 1)/(M + K − 1). OpenBLAS core: \(BLASCore.current).\n\n"
            + "| K | M | schedule | stage layers | PyTorch samples/s | Chimera samples/s | Chimera ÷ PyTorch | largest loss difference | bubble (K−1)/(M+K−1) | idle per stage | mean idle |\n"
            + "|---:|---:|---|---|---:|---:|---:|---:|---:|---|---:|\n"
        for k in options.stages {
            let plan = try PipelinePlan(network: network, stages: k)
            let layers = plan.layerCounts
            let cluster = try SwiftChimeraCluster(
                mode: .parameterServer, shards: Array(repeating: shard, count: k), threads: 1)
            // A warm-up fit: the first pays for the workers' first products and connections.
            _ = try chimera(cluster, options, stageLayers: layers, microBatches: 4, schedule: "gpipe", steps: 3)
            for m in options.microBatches {
                for schedule in options.schedules {
                    var ours: [Outcome] = []
                    var theirs: [Outcome] = []
                    for _ in 0..<options.repeats {
                        ours.append(
                            try chimera(
                                cluster, options, stageLayers: layers, microBatches: m, schedule: schedule,
                                steps: options.steps))
                        theirs.append(
                            try pytorch(
                                python, options, files: files, sizes: sizes, stageLayers: layers, microBatches: m,
                                schedule: schedule))
                        log(
                            String(
                                format: "K %d M %d %@: chimera %.0f samples/s, pytorch %.0f", k, m, schedule,
                                ours.last!.samplesPerSecond, theirs.last!.samplesPerSecond))
                    }
                    let our = median(ours.map(\.samplesPerSecond))
                    let their = median(theirs.map(\.samplesPerSecond))
                    let difference = zip(ours, theirs).map { pair in
                        zip(pair.0.losses, pair.1.losses).map { abs($0 - $1) }.max() ?? .infinity
                    }.max()
                    let idle = (0..<k).map { stage in
                        median(ours.compactMap { $0.idle.count == k ? $0.idle[stage] : nil }) ?? 0
                    }
                    let bubble = Double(k - 1) / Double(m + k - 1)
                    out +=
                        "| \(k) | \(m) | \(schedule) | \(layers) | \(f(their, 0)) | \(f(our, 0)) | \(f(MLPBenchmark.ratio(our, their), 2))× | \(difference.map { String(format: "%.1e", $0) } ?? "–") | \(f(bubble, 3)) | \(idle.map { f($0, 3) }.joined(separator: " ")) | \(f(idle.reduce(0, +) / Double(k), 3)) |\n"
                }
            }
        }
        return out + "\n"
    }

    static func f(_ value: Double?, _ digits: Int) -> String { MLPBenchmark.f(value, digits) }

    static func chimera(
        _ cluster: SwiftChimeraCluster, _ options: Options, stageLayers: String, microBatches: Int, schedule: String,
        steps: Int
    ) throws -> Outcome {
        var request = Chimera_V1_FitRequest()
        request.kind = .parameterServer
        request.config = try FitSettings.parse(arguments: [
            "--model", "mlp", "--hidden", options.hidden.map(String.init).joined(separator: ","), "--batch-size", "0",
            "--eta0", "\(options.learningRate)", "--penalty", "none", "--raw-features", "--iterations", "\(steps)",
            "--seed", "11",
            "--parallelism", "pipeline", "--stage-layers", stageLayers, "--micro-batches", "\(microBatches)",
            "--schedule-pipeline", schedule,
        ]).wire(mode: .parameterServer)
        request.config.recordTimeline = true
        let reply = try cluster.client.fit(request)
        guard reply.state == .succeeded else { throw BenchmarkError("the pipeline fit ended \(reply.state)") }
        let stamps = reply.report.timeline.map(\.seconds)
        let loop = stamps.count > 2 ? stamps[stamps.count - 1] - stamps[1] : 0
        return Outcome(
            samplesPerSecond: loop > 0 ? Double(options.rows * (stamps.count - 2)) / loop : 0,
            losses: reply.report.timeline.dropFirst().map(\.trainLoss),
            idle: reply.report.stages.sorted { $0.stage < $1.stage }.map(\.idleFraction))
    }

    static func pytorch(
        _ python: URL, _ options: Options, files: (x: URL, y: URL, w: URL), sizes: String, stageLayers: String,
        microBatches: Int, schedule: String
    ) throws -> Outcome {
        let output = try capture(
            python.path,
            [
                options.script.path, "--x", files.x.path, "--y", files.y.path, "--weights", files.w.path, "--sizes",
                sizes, "--stage-layers", stageLayers, "--micro-batches", "\(microBatches)", "--schedule", schedule,
                "--steps", "\(options.steps)", "--lr", "\(options.learningRate)", "--port", "\(try freePort())",
            ], environment: ["OMP_NUM_THREADS": "1"])
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let rate = object["samples_per_s"] as? Double, let losses = object["losses"] as? [Double]
        else { throw BenchmarkError("pytorch_pipeline.py printed no result: \(output.suffix(500))") }
        return Outcome(samplesPerSecond: rate, losses: losses)
    }
}
