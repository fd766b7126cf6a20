import ChimeraCluster
import ChimeraML
import ChimeraWire
public import Foundation

/// One run's outcome, with what the report needs.
public struct SweepRun: Sendable, Codable {
    public struct Point: Sendable, Codable {
        public var iteration: Int
        public var seconds: Double
        public var heldOutLoss: Double
        public var trainLoss: Double
        public var clocks: [Int]
        public var barrierWaitSeconds: Double
    }

    public var id: String
    public var staleness: Int?
    public var workers: Int
    public var learningRate: Double
    public var stragglers: String
    public var stragglerDescription: String
    public var repeatIndex: Int
    /// The `grid:` block's settings of this run (name → value as written on a command line).
    public var settings: [String: String] = [:]
    public var wallSeconds: Double
    public var iterations: Int
    public var finalHeldOutLoss: Double
    public var heldOutAccuracy: Double?
    public var secondsToTarget: Double?
    public var meanObservedStaleness: Double
    public var stalenessHistogram: [Int]
    public var waitingFraction: Double
    public var initialWeightsDigest: String
    public var partitionDigests: [String]
    public var points: [Point]

    public var stalenessLabel: String { staleness.map { "s=\($0)" } ?? "s=∞" }
    /// "algorithm=ma wire_dtype=bfloat16": the run's `grid:` settings, sorted by name.
    public var gridLabel: String {
        settings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
    public var iterationsPerSecond: Double { wallSeconds > 0 ? Double(iterations) / wallSeconds : 0 }
    /// The largest lead of the fastest over the slowest live worker seen in the recorded clocks.
    public var maxClockSpread: Int { points.map { ($0.clocks.max() ?? 0) - ($0.clocks.min() ?? 0) }.max() ?? 0 }
}

/// Runs a sweep: for each grid point a fresh local cluster (master + workers as child processes of
/// this executable), one fit that records its timeline and weights, held-out evaluation, teardown.
public final class SweepRunner {
    let configuration: SweepConfiguration
    let output: URL
    let log: (String) -> Void

    public init(configuration: SweepConfiguration, output: URL, log: @escaping (String) -> Void) {
        self.configuration = configuration
        self.output = output
        self.log = log
    }

    struct Prepared {
        let shards: [Int: [URL]]
        let digests: [Int: [String]]
        let test: Dataset
    }

    public func run() throws -> [SweepRun] {
        // A folder of data is read and checked before anything is written: a bad one leaves no output.
        let given = try configuration.dataPath.map { try loadGivenData($0) }
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let prepared = try given ?? prepareData()
        var runs: [SweepRun] = []
        let grid = gridPoints()
        for (index, point) in grid.enumerated() {
            let started = Date()
            log(
                "run \(index + 1)/\(grid.count): \(point.staleness.map { "s=\($0)" } ?? "s=∞"), N=\(point.workers), lr=\(point.learningRate), stragglers=\(point.stragglers.name)\(point.settings.isEmpty ? "" : ", " + point.settings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")), repeat \(point.repeatIndex + 1)"
            )
            let run = try execute(point, id: String(format: "run-%03d", index + 1), prepared: prepared)
            runs.append(run)
            log(
                String(
                    format: "  %.2f s, %d iterations, held-out loss %.4f%@ (%.1f s elapsed in the sweep step)",
                    run.wallSeconds,
                    run.iterations, run.finalHeldOutLoss,
                    run.secondsToTarget.map { String(format: ", target reached at %.2f s", $0) } ?? "",
                    Date().timeIntervalSince(started)))
        }
        return runs
    }

    // MARK: Grid

    struct GridPoint {
        let staleness: Int?
        let workers: Int
        let learningRate: Double
        let stragglers: SweepConfiguration.StragglerSetting
        let repeatIndex: Int
        /// The values of the `grid:` block's axes at this point.
        let settings: [String: FitValue]
    }

    /// Every combination of the `grid:` block's values (one empty combination without it).
    func gridCombinations() -> [[String: FitValue]] {
        configuration.grid.reduce([[:]]) { combinations, axis in
            combinations.flatMap { combination in
                axis.values.map { value in combination.merging([axis.name: value]) { $1 } }
            }
        }
    }

    func gridPoints() -> [GridPoint] {
        var points: [GridPoint] = []
        for repeatIndex in 0..<configuration.repeats {
            for stragglers in configuration.stragglers {
                for workers in configuration.workers {
                    for settings in gridCombinations() {
                        for rate in configuration.learningRates {
                            for staleness in configuration.staleness {
                                points.append(
                                    GridPoint(
                                        staleness: staleness, workers: workers, learningRate: rate,
                                        stragglers: stragglers, repeatIndex: repeatIndex, settings: settings))
                            }
                        }
                    }
                }
            }
        }
        return points
    }

    // MARK: Data

    /// A folder in the layout `chimera local --data` takes (any worker folder names; a `test/` folder or
    /// `data.test`), loaded and checked once.
    func loadGivenData(_ path: String) throws -> Prepared {
        let root = URL(fileURLWithPath: path)
        let testFolder = configuration.testPath.map { URL(fileURLWithPath: $0) } ?? root.appendingPathComponent("test")
        let test = try ShardLayout.loadPair(
            features: testFolder.appendingPathComponent("X_test.csv").path,
            labels: testFolder.appendingPathComponent("y_test.csv").path)
        var shards: [Int: [URL]] = [:]
        var digests: [Int: [String]] = [:]
        // One shard folder: every worker of a run reads it (pipeline stages need the same rows).
        if FileManager.default.fileExists(atPath: root.appendingPathComponent("X_train.csv").path) {
            let shared = digest(try ShardLayout.loadShard(root))
            for n in configuration.workers {
                shards[n] = Array(repeating: root, count: n)
                digests[n] = Array(repeating: shared, count: n)
            }
            return Prepared(shards: shards, digests: digests, test: test)
        }
        let folders = try ShardLayout.workerFolders(root)
        for n in configuration.workers {
            guard folders.count >= n else {
                throw SweepConfigurationError(
                    field: "workers", "\(path) has \(folders.count) worker folders, a run needs \(n)")
            }
            shards[n] = Array(folders.prefix(n))
            let loaded = try shards[n]!.map { try ShardLayout.loadShard($0) }
            try ShardLayout.checkConsistent(zip(folders, loaded).map { ($0.lastPathComponent, $1.featureNames) })
            digests[n] = loaded.map(digest)
        }
        return Prepared(shards: shards, digests: digests, test: test)
    }

    /// Writes the partitions once per worker count: every run with N workers reads the same files.
    func prepareData() throws -> Prepared {
        var shards: [Int: [URL]] = [:]
        var digests: [Int: [String]] = [:]
        let test: Dataset
        do {
            var spec = configuration.data
            spec.task = configuration.model == .linearRegression ? .regression : spec.task
            let data = SyntheticData.generate(spec)
            let split = SyntheticData.split(data, testFraction: configuration.testFraction, seed: spec.seed &+ 1)
            test = split.test
            for n in configuration.workers {
                let folder = output.appendingPathComponent("data/N\(n)")
                let parts = SyntheticData.partition(split.train, parts: n)
                try ShardLayout.write(shards: parts, test: nil, to: folder)
                shards[n] = (1...n).map { folder.appendingPathComponent("worker-\($0)") }
                digests[n] = parts.map(digest)
            }
        }
        return Prepared(shards: shards, digests: digests, test: test)
    }

    // MARK: One run

    func execute(_ point: GridPoint, id: String, prepared: Prepared) throws -> SweepRun {
        let runFolder = output.appendingPathComponent("runs/\(id)")
        try FileManager.default.createDirectory(at: runFolder, withIntermediateDirectories: true)
        var processes: [ChildProcess] = []
        defer {
            for process in processes.reversed() {
                process.terminate()
                process.wait(timeoutSeconds: 10)
            }
        }
        let controlEndpoint: String
        if let workers = configuration.masterWorkersEndpoint, let control = configuration.masterControlEndpoint {
            _ = workers
            controlEndpoint = control
        } else {
            let master = try ChildProcess(
                name: "master",
                arguments: ["master", "--port", "0", "--model-dir", runFolder.appendingPathComponent("model").path],
                captureOutput: true, logFile: runFolder.appendingPathComponent("master.log"))
            processes.append(master)
            guard let line = master.nextLine(timeoutSeconds: 60), let endpoints = MasterAnnouncement(line: line) else {
                throw ClusterError("the master of \(id) did not start")
            }
            controlEndpoint = endpoints.control
            for (index, shard) in prepared.shards[point.workers]!.enumerated() {
                var arguments = [
                    "worker", "--master", endpoints.workers, "--data", shard.path, "--name", "worker-\(index + 1)",
                    "--delay-ms", "\(configuration.delayMilliseconds)",
                ]
                let setting = point.stragglers
                if setting.workers?.contains(index + 1) ?? true, setting.straggler.isActive {
                    let s = setting.straggler
                    arguments += [
                        "--slowdown", "\(s.slowdown)", "--pause-probability", "\(s.pauseProbability)", "--pause-ms",
                        "\(s.pauseMilliseconds)", "--pause-every", "\(s.pauseEvery)", "--straggler-seed",
                        "\(s.seed &+ UInt64(point.repeatIndex))",
                    ]
                }
                processes.append(
                    try ChildProcess(
                        name: "worker-\(index + 1)", arguments: arguments, captureOutput: true,
                        logFile: runFolder.appendingPathComponent("worker-\(index + 1).log")))
            }
        }
        let client = try MasterClient(endpoint: controlEndpoint)
        let deadline = Date().addingTimeInterval(120)
        while try client.status().workers.filter(\.ready).count < point.workers {
            guard Date() < deadline else { throw ClusterError("\(id): workers did not become ready") }
            usleep(20_000)
        }
        let fit = try configuration.fitSettings(
            learningRate: point.learningRate, staleness: point.staleness, grid: point.settings)
        var request = Chimera_V1_FitRequest()
        request.kind = .parameterServer
        request.config = try fit.wire(mode: .parameterServer)
        request.config.recordTimeline = true
        request.config.recordWeights = true
        let reply = try client.fit(request)
        guard reply.state == .succeeded else { throw ClusterError("\(id): the fit ended \(reply.state)") }
        let model = try FittedModel.load(from: runFolder.appendingPathComponent("model/model.json"))
        return try evaluate(point, id: id, reply: reply.report, model: model, prepared: prepared)
    }

    func evaluate(
        _ point: GridPoint, id: String, reply report: Chimera_V1_FitReport, model: FittedModel, prepared: Prepared
    ) throws
        -> SweepRun
    {
        let objective = try model.objective()
        var test = model.standardizer?.apply(to: prepared.test) ?? prepared.test
        if let names = model.classNames, !names.isEmpty, !test.labelNames.isEmpty {
            // Named test labels, re-indexed into the model's classes; rows of a class no training
            // shard had cannot be scored and are left out.
            let known = Set(names)
            let rowNames = test.labels.map { test.labelNames[Int($0)] }
            let kept = rowNames.indices.filter { known.contains(rowNames[$0]) }
            let rows = test.gather(kept)
            let named = Dataset(
                featureNames: rows.featureNames, features: rows.features, labelNames: kept.map { rowNames[$0] })
            test = named.relabelled(into: names) ?? test
        }
        var gradient = [Float](repeating: 0, count: objective.weightCount)
        let points = report.timeline.map { record -> SweepRun.Point in
            let loss = objective.lossAndGradient(weights: record.weights, data: test, gradient: &gradient)
            return SweepRun.Point(
                iteration: Int(record.iteration), seconds: record.seconds, heldOutLoss: loss,
                trainLoss: record.trainLoss,
                clocks: record.clocks.map { Int($0) }, barrierWaitSeconds: record.barrierWaitSeconds)
        }
        var accuracy: Double?
        if objective.isClassifier {
            let predicted = objective.predict(weights: model.weights, data: test)
            accuracy = Double(zip(predicted, test.labels).filter { $0 == $1 }.count) / Double(test.rows)
        }
        let histogram = report.stalenessHistogram.map { Int($0) }
        let starts = histogram.reduce(0, +)
        let meanStaleness =
            starts > 0 ? Double(histogram.enumerated().reduce(0) { $0 + $1.offset * $1.element }) / Double(starts) : 0
        let wall = report.wallSeconds
        return SweepRun(
            id: id, staleness: point.staleness, workers: point.workers, learningRate: point.learningRate,
            stragglers: point.stragglers.name, stragglerDescription: describe(point.stragglers),
            repeatIndex: point.repeatIndex, settings: point.settings.mapValues(\.description),
            wallSeconds: wall, iterations: Int(report.iterations), finalHeldOutLoss: points.last?.heldOutLoss ?? .nan,
            heldOutAccuracy: accuracy,
            secondsToTarget: configuration.targetLoss.flatMap { target in
                points.first { $0.heldOutLoss <= target }?.seconds
            },
            meanObservedStaleness: meanStaleness, stalenessHistogram: histogram,
            waitingFraction: wall > 0 ? report.barrierWaitSeconds / (wall * Double(point.workers)) : 0,
            initialWeightsDigest: digest(report.timeline.first?.weights ?? []),
            partitionDigests: prepared.digests[point.workers] ?? [], points: points)
    }

    private func describe(_ setting: SweepConfiguration.StragglerSetting) -> String {
        guard setting.straggler.isActive else { return "none" }
        let who = setting.workers.map { "workers \($0.map(String.init).joined(separator: ","))" } ?? "all workers"
        return "\(who): \(setting.straggler)"
    }
}

/// FNV-1a over the float bits: equal digests mean equal data, bit for bit.
func digest(_ values: [Float]) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for value in values {
        var bits = value.bitPattern
        for _ in 0..<4 {
            hash ^= UInt64(bits & 0xFF)
            hash &*= 0x100_0000_01b3
            bits >>= 8
        }
    }
    return String(hash, radix: 16)
}

func digest(_ data: Dataset) -> String { digest(data.features + data.labels) }
