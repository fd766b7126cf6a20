import ArgumentParser
import ChimeraCluster
import ChimeraML
import Foundation

/// The fit settings of `chimera fit` and `chimera http fit`: every `--name value` the command itself
/// does not take, parsed by the fit vocabulary (listed in `--help`).
struct FitOptions: ParsableArguments {
    @Argument(parsing: .allUnrecognized, help: ArgumentHelp(visibility: .hidden)) var words: [String] = []

    func settings() throws -> FitSettings {
        do {
            return try FitSettings.parse(arguments: words)
        } catch {
            throw CommandError(error.description)
        }
    }
}

extension FitSettings {
    /// Whether these settings suit the master's mode, with command-line error messages.
    func check(mode: FitMode) throws {
        do {
            try check(mode: mode, spelling: .flag)
        } catch {
            throw CommandError(error.description)
        }
    }
}

struct Fit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fit a model on the cluster and print the report.", discussion: FitVocabulary.helpText)

    @Option(help: "The master's control endpoint.") var master = "tcp://127.0.0.1:5557"
    @OptionGroup var fit: FitOptions
    @Option(help: "Cancel the fit if it has not ended after this many seconds.") var timeout = 3600.0
    @Option(help: "Seconds between progress polls.") var poll = 0.1
    @Option(help: "First wait (up to 60 s) until this many workers are ready.") var waitWorkers = 0
    @OptionGroup var curve: CurveClientOptions

    func run() throws {
        let settings = try fit.settings()
        let client = try MasterClient.watching(endpoint: master, curve: try curve.settings())
        // The master's mode decides which settings apply: SGD hyper-parameters or tree settings.
        let mode = try client.cluster().fitMode
        try settings.check(mode: mode)
        if waitWorkers > 0 {
            let deadline = Date().addingTimeInterval(60)
            var ready = 0
            while true {
                ready = try client.cluster().readyWorkers
                if ready >= waitWorkers { break }
                guard Date() < deadline else {
                    throw CommandError("only \(ready) of \(waitWorkers) workers became ready within 60 s")
                }
                usleep(50_000)
            }
        }
        // Started as a job and followed: progress on the way, and Ctrl-C or --timeout cancel it.
        let interrupted = interruptionFlag()
        let started = try client.startFit(settings, mode: mode)
        let id = started.id
        logLine(
            "job \(id) started: Ctrl-C cancels it (from elsewhere: chimera cancel \(id) --token \(String(started.token, radix: 16)))"
        )
        let progress = ProgressDisplay(
            total: mode == .aggregation ? nil : settings["iterations"]?.integer, label: "job \(id)")
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let (job, report) = try client.job(id)
            progress.update(iteration: job.iteration, loss: job.loss, state: job.state)
            if !job.isRunning {
                progress.finish()
                print(FitReportText.render(report))
                if let error = job.error { print("error: \(error)") }
                guard job.state == "succeeded" else { throw ExitCode(1) }
                return
            }
            if interrupted.isStopped || Date() > deadline {
                progress.finish()
                try client.cancel(jobID: id, token: started.token)
                if interrupted.isStopped {
                    logLine("job \(id) cancelled (Ctrl-C)")
                    throw ExitCode(130)
                }
                throw CommandError(
                    "job \(id) had not ended after --timeout \(timeout) s (the master answers; the fit is long): cancelled it"
                )
            }
            usleep(useconds_t(max(poll, 0.01) * 1e6))
        }
    }
}

struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Cancel a running job: with the token `chimera fit` printed, or as a CURVE client (use `chimera http cancel` through a gateway)."
    )
    @Argument(help: "The job's id.") var job: UInt64
    @Option(help: "The job's token (hex), printed by the chimera fit that started it.") var token: String?
    @Option(help: "The master's control endpoint.") var master = "tcp://127.0.0.1:5557"
    @OptionGroup var curve: CurveClientOptions

    func run() throws {
        guard let value = UInt64(token ?? "0", radix: 16) else {
            throw ValidationError("--token is hex, as chimera fit prints it")
        }
        let client = try MasterClient.watching(endpoint: master, curve: try curve.settings())
        try client.cancel(jobID: job, token: value)
        print("job \(job): \(try client.job(job).view.state)")
    }
}

enum FitReportText {
    static func render(_ r: FitReportView) -> String {
        if r.members > 0 {
            var lines = [
                "job \(r.jobID): \(r.state): \(r.members) trees",
                String(
                    format: "  wall %.3f s   bytes sent %llu   received %llu", r.wallSeconds, r.bytesSent,
                    r.bytesReceived),
            ]
            if !r.failedWorkers.isEmpty { lines.append("  failed workers: \(r.failedWorkers.joined(separator: "; "))") }
            return lines.joined(separator: "\n")
        }
        var lines = [
            "job \(r.jobID): \(r.state)",
            String(format: "  iterations %llu   final loss %.6g", r.iterations, r.finalLoss),
            String(format: "  wall %.3f s   %.3f ms per iteration", r.wallSeconds, r.secondsPerIteration * 1e3),
            String(format: "  barrier wait %.3f s (all workers)", r.barrierWaitSeconds),
            "  staleness histogram \(r.stalenessHistogram)",
            String(
                format: "  bytes sent %llu   received %llu   (%.0f per iteration)", r.bytesSent, r.bytesReceived,
                r.bytesPerIteration),
        ]
        let spread = WorkerSpread.summary(
            r.workers.map {
                WorkerSpread.Worker(
                    name: $0.name, alive: $0.alive, clock: Int($0.clock), barrierWait: $0.barrierWaitSeconds)
            })
        lines += spread
        for worker in r.workers where spread.isEmpty {
            lines.append(
                String(
                    format: "  %@ (worker %u): clock %llu, %@, barrier wait %.3f s", worker.name, worker.workerID,
                    worker.clock,
                    worker.alive ? "alive" : "dead", worker.barrierWaitSeconds))
        }
        for stage in r.stages {
            lines.append(
                String(
                    format:
                        "  stage %u of replica %u (%@): layers %@, %llu parameters, compute %.3f s, idle %.3f s (%.1f %%), sent %llu bytes, at most %u micro-batches (%llu bytes) held",
                    stage.stage, stage.replica, stage.worker, stage.layers, stage.parameters, stage.computeSeconds,
                    stage.idleSeconds, stage.idleFraction * 100, stage.bytesSent, stage.peakMicroBatches,
                    stage.peakActivationBytes))
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
    @Flag(help: "Aggregation: have the workers predict with their own trees (the Python Chimera's way).") var fanOut =
        false
    @OptionGroup var curve: CurveClientOptions

    func run() throws {
        let (columns, rows) = try ShardLayout.loadFeatures(x)
        let client = try MasterClient.watching(endpoint: master, curve: try curve.settings())
        let start = Date()
        let prediction = try client.predict(
            columns: columns, values: rows.flatMap { $0 }, rows: rows.count, probabilities: y != nil, mode: nil,
            fanOut: fanOut)
        let elapsed = Date().timeIntervalSince(start)
        guard let y else {
            for text in prediction.texts { print(text) }
            return
        }
        let column = try ShardLayout.loadLabelColumn(y)
        guard column.count == prediction.values.count else {
            throw CommandError("\(y) has \(column.count) rows, \(x) has \(prediction.values.count)")
        }
        let timing = String(format: "predict %.1f ms", elapsed * 1e3)
        switch column {
        case .names(let truth):
            guard !prediction.classNames.isEmpty else {
                throw CommandError("\(y) holds class names; the model's classes are numbers")
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
                throw CommandError(
                    "\(y) holds numbers; the model's classes are names (\(prediction.classNames.joined(separator: ", ")))"
                )
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
            format: "accuracy %.4f (%d/%d rows, %@)", Double(correct) / Double(max(truth.count, 1)), correct,
            truth.count, timing))
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the cluster: workers, liveness, clocks, rejected messages.")
    @Option(help: "The master's control endpoint.") var master = "tcp://127.0.0.1:5557"
    @Flag(help: "One line per worker even when there are many (beyond 16 a summary is printed).") var all = false
    @OptionGroup var curve: CurveClientOptions

    func run() throws {
        let cluster = try MasterClient.watching(endpoint: master, curve: try curve.settings()).cluster()
        if cluster.jobID == 0 {
            print("no job yet (\(cluster.mode) master)")
        } else if cluster.isAggregation {
            print("job \(cluster.jobID) \(cluster.jobState)")
        } else {
            print("job \(cluster.jobID) \(cluster.jobState)  iteration \(cluster.iteration)  loss \(cluster.loss)")
        }
        let spread = WorkerSpread.summary(
            cluster.workers.map { WorkerSpread.Worker(name: $0.name, alive: $0.alive, clock: $0.clock) })
        for line in spread { print(line) }
        for worker in cluster.workers where spread.isEmpty || all {
            print(
                "  \(worker.name) (worker \(worker.id), pid \(worker.pid) on \(worker.host)): \(worker.alive ? "alive" : "dead"), clock \(worker.clock)\(worker.stage.map { ", \($0)" } ?? "")"
            )
        }
        for server in cluster.servers ?? [] {
            let holds =
                server.shard.map { "shard \($0), parameters \(server.start ?? 0)..<\(server.end ?? 0)" } ?? "idle"
            print(
                "  \(server.name) (parameter server, \(server.endpoint), pid \(server.pid) on \(server.host)): \(holds)"
            )
        }
        print("rejected messages: \(cluster.rejectedMessages) \(cluster.rejectedByKind.sorted { $0.key < $1.key })")
    }
}

/// `chimera settings`: the fit vocabulary, as help text or as README's tables.
struct Settings: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every fit setting: flag, HTTP field, type, default, meaning.")
    @Flag(help: "Print README's Markdown tables (one per mode).") var markdown = false

    func run() {
        guard markdown else { return print(FitVocabulary.helpText) }
        for mode in FitMode.allCases {
            print("\(mode.rawValue):\n\n\(FitVocabulary.markdownTable(mode: mode))\n")
        }
    }
}
