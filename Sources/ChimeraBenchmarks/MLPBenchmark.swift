import ChimeraCluster
import ChimeraML
import ChimeraWire
public import Foundation

/// `chimera bench mlp`: data-parallel MLP training on our parameter server against PyTorch
/// DistributedDataParallel (gloo, CPU) — `shared/baselines/pytorch-ddp` — in the same invocation, runs
/// interleaved, medians of repeats. Same shards (`mlp_synth`, 100,000 × 64, 10 classes), architecture,
/// per-worker batch, optimizer (SGD, momentum 0.9, lr 0.05, no penalty) and steps; one compute thread
/// per worker on both sides. Steps per second are timed as DDP times them: the training loop after its
/// first step (ours: from the first to the last weight update in the fit's timeline, after one short
/// warm-up fit per cluster); the client's
/// wall time per fit is reported beside it. For the bigger model the median round is set against the
/// raw-libzmq C round (`psround tcp N P`) with the same payload.
public enum MLPBenchmark {
    public struct Options: Sendable {
        public var ddpDirectory: URL
        public var floorDirectory: URL
        public var scratch: URL
        public var workers = [1, 2, 4]
        public var repeats = 5
        /// (hidden layers, steps) per table.
        public var models: [(hidden: String, steps: Int)] = [("256,256", 500), ("1024,1024", 200)]

        public init(ddpDirectory: URL, floorDirectory: URL, scratch: URL) {
            self.ddpDirectory = ddpDirectory
            self.floorDirectory = floorDirectory
            self.scratch = scratch
        }
    }

    struct Run {
        let stepsPerSecond: Double
        let wallStepsPerSecond: Double?
        let accuracy: Double?
        let medianRoundMilliseconds: Double?
        var bytesPerIteration: Double? = nil
    }

    public static func run(_ options: Options, log: (String) -> Void) throws -> String {
        let python = options.ddpDirectory.appendingPathComponent(".venv/bin/python")
        let data = options.ddpDirectory.appendingPathComponent("data/mlp_synth")
        if !FileManager.default.fileExists(atPath: python.path)
            || !FileManager.default.fileExists(atPath: data.appendingPathComponent("test").path)
        {
            log("preparing the PyTorch venv and the data (run.sh: torch from PyPI, minutes)")
            try capture(
                "/usr/bin/env",
                [
                    "bash", options.ddpDirectory.appendingPathComponent("run.sh").path, "--workers", "1,2,4", "--steps",
                    "2",
                ])
        }
        let psround = try PSRound(floorDirectory: options.floorDirectory, scratch: options.scratch, log: log)
        let test = try HeldOut(data.appendingPathComponent("test"))
        var out = "### MLP training: Chimera's parameter server vs PyTorch DDP (gloo, CPU), same run\n\n"
        out +=
            "`mlp_synth` (100,000 × 64 in N shards, 10 classes, 20,000 held out), per-worker batch 64, SGD lr 0.05 momentum 0.9, one thread per worker, \(options.repeats) interleaved repeats (repeat r: seed r on both sides), medians. OpenBLAS core: \(BLASCore.current).\n\n"
        for model in options.models {
            out += "\(architecture(model.hidden)), \(model.steps) steps:\n\n"
            out +=
                "| N | params | DDP steps/s | DDP accuracy | Chimera steps/s | (client wall) | Chimera accuracy | Chimera ÷ DDP | Chimera median round ms | psround C ms | Chimera ÷ C | bfloat16 steps/s | bfloat16 accuracy | bytes/iteration float32 → bfloat16 |\n"
            out += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
            for n in options.workers {
                log(
                    "\(architecture(model.hidden)), N = \(n): \(options.repeats) × (Chimera fit, DDP run, psround), interleaved"
                )
                let shards = (1...n).map { data.appendingPathComponent("N\(n)/worker-\($0)") }
                let cluster = try SwiftChimeraCluster(mode: .parameterServer, shards: shards, threads: 1)
                var ours: [Run] = []
                var compact: [Run] = []
                var theirs: [Run] = []
                var floors: [Double] = []
                var parameters = 0
                // A cluster is up before its fits: one short fit first, as DDP's own first step is
                // left out of its timing (the first touches of every buffer, the scheduler settling).
                _ = try fit(cluster, workers: n, hidden: model.hidden, steps: 20, seed: 1, test: nil)
                for repeatIndex in 0..<options.repeats {
                    // Each repeat its own seed (initialisation and batch order), the same for both
                    // systems: the accuracies are medians over seeds, not one draw.
                    let seed = repeatIndex + 1
                    let (run, count) = try fit(
                        cluster, workers: n, hidden: model.hidden, steps: model.steps, seed: seed, test: test)
                    ours.append(run)
                    parameters = count
                    log(String(format: "  chimera %.1f steps/s, accuracy %.4f", run.stepsPerSecond, run.accuracy ?? 0))
                    let (halved, _) = try fit(
                        cluster, workers: n, hidden: model.hidden, steps: model.steps, seed: seed, test: test,
                        wireDType: "bfloat16")
                    compact.append(halved)
                    log(
                        String(
                            format: "  chimera bfloat16 %.1f steps/s, accuracy %.4f", halved.stepsPerSecond,
                            halved.accuracy ?? 0))
                    let ddp = try ddpRun(
                        python: python, options.ddpDirectory, data: data, workers: n, hidden: model.hidden,
                        steps: model.steps, seed: seed)
                    theirs.append(ddp)
                    log(String(format: "  ddp %.1f steps/s, accuracy %.4f", ddp.stepsPerSecond, ddp.accuracy ?? 0))
                    if let floor = try psround.medianRound(workers: n, floats: parameters) { floors.append(floor) }
                }
                let ourRate = median(ours.map(\.stepsPerSecond))
                let theirRate = median(theirs.map(\.stepsPerSecond))
                let round = median(ours.compactMap(\.medianRoundMilliseconds))
                let floor = median(floors)
                out +=
                    "| \(n) | \(parameters) | \(f(theirRate, 1)) | \(f(median(theirs.compactMap(\.accuracy)), 4)) | \(f(ourRate, 1)) | \(f(median(ours.compactMap(\.wallStepsPerSecond)), 1)) | \(f(median(ours.compactMap(\.accuracy)), 4)) | \(f(ratio(ourRate, theirRate), 2))× | \(f(round, 2)) | \(f(floor, 2)) | \(f(ratio(round, floor), 2))× | \(f(median(compact.map(\.stepsPerSecond)), 1)) | \(f(median(compact.compactMap(\.accuracy)), 4)) | \(f(median(ours.compactMap(\.bytesPerIteration)), 0)) → \(f(median(compact.compactMap(\.bytesPerIteration)), 0)) |\n"
            }
            out += "\n"
        }
        return out
    }

    static func architecture(_ hidden: String) -> String { "64-" + hidden.replacing(",", with: "-") + "-10" }

    /// One fit on the cluster, then the held-out accuracy; with the model's parameter count.
    static func fit(
        _ cluster: SwiftChimeraCluster, workers: Int, hidden: String, steps: Int, seed: Int, test: HeldOut?,
        wireDType: String = "float32"
    ) throws
        -> (Run, Int)
    {
        var request = Chimera_V1_FitRequest()
        request.kind = .parameterServer
        request.config = try FitSettings.parse(arguments: [
            "--model", "mlp", "--hidden", hidden, "--batch-size", "64", "--eta0", "0.05", "--momentum", "0.9",
            "--penalty", "none", "--iterations", "\(steps)", "--seed", "\(seed)", "--wire-dtype", wireDType,
        ]).wire(mode: .parameterServer)
        request.config.recordTimeline = true
        var start = monotonicSeconds()
        var reply = try cluster.client.fit(request)
        var wall = monotonicSeconds() - start
        // Only a fit with every worker in it counts (the first may race the last handshakes).
        let deadline = Date().addingTimeInterval(120)
        while reply.report.clocks.filter({ $0.clock == UInt64(steps) }).count < workers {
            guard Date() < deadline else { throw BenchmarkError("not every worker took part") }
            start = monotonicSeconds()
            reply = try cluster.client.fit(request)
            wall = monotonicSeconds() - start
        }
        guard reply.state == .succeeded else { throw BenchmarkError("the fit ended \(reply.state)") }
        let stamps = reply.report.timeline.map(\.seconds)
        // The timeline's first record is the start; updates 1…S follow: steps 2…S as DDP times them.
        let loop = stamps.count > 2 ? stamps[stamps.count - 1] - stamps[1] : 0
        var accuracy: Double?
        if let test {
            let prediction = try cluster.client.predict(
                columns: test.columns, values: test.rows.flatMap { $0 }, rows: test.rows.count)
            accuracy =
                Double(zip(prediction.values, test.labels).filter { $0 == Double($1) }.count)
                / Double(test.labels.count)
        }
        let parameters = try MLP(
            inputs: 64, hidden: hidden.split(separator: ",").compactMap { Int($0) }, activation: .relu,
            head: .softmax(classes: 10)
        ).parameterCount
        return (
            Run(
                stepsPerSecond: loop > 0 ? Double(stamps.count - 2) / loop : 0,
                wallStepsPerSecond: Double(steps) / wall, accuracy: accuracy,
                medianRoundMilliseconds: median(zip(stamps.dropFirst(2), stamps.dropFirst()).map { ($0 - $1) * 1e3 }),
                bytesPerIteration: Double(reply.report.bytesSent + reply.report.bytesReceived)
                    / Double(max(reply.report.iterations, 1))),
            parameters
        )
    }

    /// One `ddp_mlp.py` run (its JSON line).
    static func ddpRun(
        python: URL, _ directory: URL, data: URL, workers: Int, hidden: String, steps: Int, seed: Int
    ) throws -> Run {
        let output = try capture(
            python.path,
            [
                directory.appendingPathComponent("ddp_mlp.py").path, "--data", data.path, "--world", "\(workers)",
                "--hidden", hidden, "--steps", "\(steps)", "--seed", "\(seed)", "--port", "\(try freePort())",
            ], environment: ["OMP_NUM_THREADS": "1"])
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let rate = object["steps_per_s"] as? Double
        else { throw BenchmarkError("ddp_mlp.py printed no result: \(output.suffix(500))") }
        return Run(
            stepsPerSecond: rate, wallStepsPerSecond: nil, accuracy: object["test_accuracy"] as? Double,
            medianRoundMilliseconds: nil)
    }

    static func ratio(_ a: Double?, _ b: Double?) -> Double? {
        guard let a, let b, b > 0 else { return nil }
        return a / b
    }

    static func f(_ value: Double?, _ digits: Int) -> String {
        value.map { String(format: "%.\(digits)f", $0) } ?? "–"
    }
}
