import ArgumentParser
import ChimeraCluster
import ChimeraML
import ChimeraWire
import Foundation

/// Fit hyper-parameters shared by `chimera fit` (and later sweeps).
struct FitOptions: ParsableArguments {
    @Option(help: "linear, logistic, softmax, svm, or auto: the master picks from the labels (two values: logistic; up to 50 whole numbers: softmax; else linear).")
    var model = "auto"
    @Option(help: "none, l2, l1 or elasticnet.") var penalty = "l2"
    @Option(help: "Penalty strength.") var alpha = 1e-4
    @Option(help: "Elastic-net mix.") var l1Ratio = 0.15
    @Option(help: "constant, invscaling or optimal.") var schedule = "constant"
    @Option(help: "Initial learning rate.") var eta0 = 0.1
    @Option(help: "invscaling exponent.") var powerT = 0.25
    @Option(help: "Master-side momentum.") var momentum = 0.0
    @Option(help: "Iterations.") var iterations = 200
    @Option(help: "Stop when the loss improves by less than this over 5 iterations (0: never).") var tolerance = 0.0
    @Option(help: "Rows per mini-batch (0: full shard).") var batchSize = 0
    @Option(help: "gradient or local-sgd.") var workerMode = "gradient"
    @Option(help: "Local SGD steps per iteration.") var localSteps = 1
    @Option(help: "SSP staleness bound (0 = BSP), or 'unbounded'.") var staleness = "0"
    @Option(help: "Seed.") var seed: UInt64 = 42
    @Flag(help: "Skip global standardisation.") var rawFeatures = false
    @Option(help: "Checkpoint every K iterations (0: only at the end).") var checkpointEvery = 0
    @Option(help: "A non-finite or exploding loss: fail (end the fit), or backoff (best weights, half the step, at most --max-backoffs times).")
    var onDivergence = "fail"
    @Option(help: "Backoffs before a diverging fit fails (with --on-divergence backoff).") var maxBackoffs = 3
    @Option(help: "Aggregation: trees each worker fits.") var treesPerWorker = 1
    @Option(help: "Aggregation: gini, entropy (classification), squared_error (regression), or auto: gini unless the labels are continuous.")
    var criterion = "auto"
    @Option(help: "Aggregation: maximum tree depth (0: unlimited).") var maxDepth = 0
    @Option(help: "Aggregation: minimum samples to split a node.") var minSamplesSplit = 2
    @Option(help: "Aggregation: minimum samples per leaf.") var minSamplesLeaf = 1
    @Option(help: "Aggregation: features per split: all, sqrt, log2, a fraction or a count.") var maxFeatures = "all"
    @Option(help: "Aggregation: maximum leaves per tree (0: unlimited; else grown best first).") var maxLeafNodes = 0
    @Flag(help: "Aggregation: fit every tree on the whole shard instead of a bootstrap.") var noBootstrap = false

    /// The FitConfig of a bagging fit.
    func treeConfiguration() throws -> Chimera_V1_FitConfig {
        var wire = Chimera_V1_FitConfig()
        switch criterion {
        case "auto": wire.model = .unspecified
        case "squared_error": wire.model = .decisionTreeRegressor
        default: wire.model = .decisionTreeClassifier
        }
        wire.criterion = criterion == "auto" ? "" : criterion
        wire.treesPerWorker = UInt32(clamping: max(treesPerWorker, 0))
        wire.maxDepth = UInt32(clamping: max(maxDepth, 0))
        wire.minSamplesSplit = UInt32(clamping: max(minSamplesSplit, 0))
        wire.minSamplesLeaf = UInt32(clamping: max(minSamplesLeaf, 0))
        wire.maxFeatures = maxFeatures
        wire.maxLeafNodes = UInt32(clamping: max(maxLeafNodes, 0))
        wire.noBootstrap = noBootstrap
        wire.seed = seed
        do {
            _ = try AggregationConfiguration(wire: wire)
        } catch {
            throw ValidationError(error.description)
        }
        return wire
    }

    /// The FitConfig of an SGD fit; `--model auto` leaves the model to the master.
    func sgdConfiguration() throws -> Chimera_V1_FitConfig {
        var wire = try configuration().wire
        if model == "auto" { wire.model = .unspecified }
        return wire
    }

    func configuration() throws -> TrainingConfiguration {
        var c = TrainingConfiguration()
        guard let model = model == "auto" ? .logisticRegression : ModelKind(rawValue: model) else {
            throw ValidationError("--model: linear, logistic, softmax, svm or auto")
        }
        guard let penalty = Penalty(rawValue: penalty) else { throw ValidationError("--penalty: none, l2, l1 or elasticnet") }
        guard let schedule = LearningRateSchedule(rawValue: schedule) else {
            throw ValidationError("--schedule: constant, invscaling or optimal")
        }
        guard let mode = WorkerMode(rawValue: workerMode) else { throw ValidationError("--worker-mode: gradient or local-sgd") }
        c.model = model
        c.penalty = penalty
        c.alpha = alpha
        c.l1Ratio = l1Ratio
        c.schedule = schedule
        c.eta0 = eta0
        c.powerT = powerT
        c.momentum = momentum
        c.maxIterations = iterations
        c.tolerance = tolerance
        c.batchSize = batchSize
        c.workerMode = mode
        c.localSteps = localSteps
        if staleness == "unbounded" || staleness == "inf" {
            c.staleness = nil
        } else if let s = Int(staleness), s >= 0 {
            c.staleness = s
        } else {
            throw ValidationError("--staleness: a number ≥ 0 or 'unbounded'")
        }
        c.seed = seed
        c.standardize = !rawFeatures
        c.checkpointEvery = checkpointEvery
        guard let policy = DivergencePolicy(rawValue: onDivergence) else { throw ValidationError("--on-divergence: fail or backoff") }
        c.onDivergence = policy
        c.maxBackoffs = maxBackoffs
        do {
            try c.validate()
        } catch {
            throw ValidationError(error.description)
        }
        return c
    }
}

struct Fit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fit a model on the cluster and print the report.")

    @Option(help: "The master's control endpoint.") var master = "tcp://127.0.0.1:5557"
    @OptionGroup var fit: FitOptions
    @Option(help: "Give up after this many seconds.") var timeout = 3600.0
    @Option(help: "First wait (up to 60 s) until this many workers are ready.") var waitWorkers = 0
    @OptionGroup var curve: CurveClientOptions

    func run() throws {
        let client = try MasterClient.watching(endpoint: master, curve: try curve.settings())
        // The master's mode decides which settings apply: SGD hyper-parameters or tree settings.
        var request = Chimera_V1_FitRequest()
        request.kind = try client.status().mode == .aggregation ? .aggregation : .parameterServer
        request.config = request.kind == .aggregation ? try fit.treeConfiguration() : try fit.sgdConfiguration()
        if waitWorkers > 0 {
            let deadline = Date().addingTimeInterval(60)
            var ready = 0
            while true {
                ready = try client.status().workers.filter(\.ready).count
                if ready >= waitWorkers { break }
                guard Date() < deadline else {
                    throw ValidationError("only \(ready) of \(waitWorkers) workers became ready within 60 s")
                }
                usleep(50_000)
            }
        }
        let reply = try client.fit(request, timeoutMilliseconds: Int32(min(timeout * 1000, 2e9)))
        print(FitReportText.render(reply))
    }
}

enum FitReportText {
    static func render(_ reply: Chimera_V1_FitReply) -> String {
        let r = reply.report
        if r.members > 0 {
            var lines = [
                "job \(reply.jobID): \(reply.state): \(r.members) trees",
                String(format: "  wall %.3f s   bytes sent %llu   received %llu", r.wallSeconds, r.bytesSent, r.bytesReceived),
            ]
            if !r.failedWorkers.isEmpty { lines.append("  failed workers: \(r.failedWorkers.joined(separator: "; "))") }
            return lines.joined(separator: "\n")
        }
        var lines = [
            "job \(reply.jobID): \(reply.state)",
            String(format: "  iterations %llu   final loss %.6g", r.iterations, r.finalLoss),
            String(format: "  wall %.3f s   %.3f ms per iteration", r.wallSeconds, r.secondsPerIteration * 1e3),
            String(format: "  barrier wait %.3f s (all workers)", r.barrierWaitSeconds),
            "  staleness histogram \(r.stalenessHistogram)",
            "  bytes sent \(r.bytesSent)   received \(r.bytesReceived)",
        ]
        for clock in r.clocks {
            lines.append(
                String(
                    format: "  %@ (worker %u): clock %llu, %@, barrier wait %.3f s", clock.name, clock.workerID, clock.clock,
                    clock.alive ? "alive" : "dead", clock.barrierWaitSeconds))
        }
        if !r.failedWorkers.isEmpty { lines.append("  failed workers: \(r.failedWorkers.joined(separator: ", "))") }
        for backoff in r.backoffs { lines.append("  backed off: \(backoff)") }
        return lines.joined(separator: "\n")
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict the rows of a CSV file (with a header) and print accuracy, R² or the predictions.")

    @Option(help: "The master's control endpoint.") var master = "tcp://127.0.0.1:5557"
    @Option(help: "Features CSV (X_test.csv).") var x: String
    @Option(help: "Labels CSV (y_test.csv): print accuracy (classifiers) or R² (regression).") var y: String?
    @Flag(help: "Aggregation: have the workers predict with their own trees (the Python Chimera's way).") var fanOut = false
    @OptionGroup var curve: CurveClientOptions

    func run() throws {
        let (columns, rows) = try ShardLayout.loadFeatures(x)
        let client = try MasterClient.watching(endpoint: master, curve: try curve.settings())
        let start = Date()
        let prediction = try client.predict(
            columns: columns, values: rows.flatMap { $0 }, rows: rows.count, probabilities: y != nil, fanOut: fanOut)
        let elapsed = Date().timeIntervalSince(start)
        guard let y else {
            for text in prediction.texts { print(text) }
            return
        }
        let column = try ShardLayout.loadLabelColumn(y)
        guard column.count == prediction.values.count else {
            throw ValidationError("\(y) has \(column.count) rows, \(x) has \(prediction.values.count)")
        }
        let timing = String(format: "predict %.1f ms", elapsed * 1e3)
        switch column {
        case .names(let truth):
            guard !prediction.classNames.isEmpty else {
                throw ValidationError("\(y) holds class names; the model's classes are numbers")
            }
            printAccuracy(truth: truth, predicted: prediction.labels.map(prediction.className), timing)
        case .values(let values) where prediction.classes.isEmpty:
            let truth = values.map(Double.init)
            let mean = truth.reduce(0, +) / Double(truth.count)
            let residual = zip(truth, prediction.values).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            let total = truth.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
            print(String(format: "R² %.4f on %d rows (%@)", 1 - residual / total, truth.count, timing))
        case .values(let values):
            guard prediction.classNames.isEmpty else {
                throw ValidationError("\(y) holds numbers; the model's classes are names (\(prediction.classNames.joined(separator: ", ")))")
            }
            printAccuracy(truth: values.map(Double.init), predicted: prediction.labels, timing)
        }
    }
}

/// Prints the share of rows whose prediction equals the truth.
func printAccuracy<Label: Equatable>(truth: [Label], predicted: [Label], _ timing: String) {
    let correct = zip(truth, predicted).filter { $0 == $1 }.count
    print(
        String(
            format: "accuracy %.4f (%d/%d rows, %@)", Double(correct) / Double(max(truth.count, 1)), correct, truth.count, timing))
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the cluster: workers, liveness, clocks, rejected messages.")
    @Option(help: "The master's control endpoint.") var master = "tcp://127.0.0.1:5557"
    @OptionGroup var curve: CurveClientOptions

    func run() throws {
        let status = try MasterClient.watching(endpoint: master, curve: try curve.settings()).status()
        print("job \(status.currentJobID) \(status.currentJobState)  iteration \(status.iteration)  loss \(status.loss)")
        for worker in status.workers {
            print(
                "  \(worker.name) (worker \(worker.workerID), pid \(worker.pid) on \(worker.host)): \(worker.alive ? "alive" : "dead"), clock \(worker.clock)"
            )
        }
        print("rejected messages: \(status.rejectedMessages) \(status.rejectedByKind.sorted { $0.key < $1.key })")
    }
}
