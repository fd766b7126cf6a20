import ArgumentParser
import ChimeraCluster
import ChimeraML
import ChimeraWire
import Foundation

/// The fit settings of `chimera fit` and `chimera http fit`: every `--name value` the command itself
/// does not take, parsed by the fit vocabulary (listed in `--help`).
struct FitOptions: ParsableArguments {
    @Argument(parsing: .allUnrecognized, help: ArgumentHelp(visibility: .hidden)) var words: [String] = []

    func settings() throws -> FitSettings {
        do {
            return try FitSettings.parse(arguments: words)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

extension FitSettings {
    /// The wire config for the master's mode, with command-line error messages.
    func commandLineWire(mode: FitMode) throws -> Chimera_V1_FitConfig {
        do {
            try check(mode: mode, spelling: .flag)
            return try wire(mode: mode)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

struct Fit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fit a model on the cluster and print the report.", discussion: FitVocabulary.helpText)

    @Option(help: "The master's control endpoint.") var master = "tcp://127.0.0.1:5557"
    @OptionGroup var fit: FitOptions
    @Option(help: "Give up after this many seconds.") var timeout = 3600.0
    @Option(help: "First wait (up to 60 s) until this many workers are ready.") var waitWorkers = 0
    @OptionGroup var curve: CurveClientOptions

    func run() throws {
        let settings = try fit.settings()
        let client = try MasterClient.watching(endpoint: master, curve: try curve.settings())
        // The master's mode decides which settings apply: SGD hyper-parameters or tree settings.
        var request = Chimera_V1_FitRequest()
        request.kind = try client.status().mode == .aggregation ? .aggregation : .parameterServer
        request.config = try settings.commandLineWire(mode: request.kind == .aggregation ? .aggregation : .parameterServer)
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

/// `chimera settings`: the fit vocabulary, as help text or as README's tables.
struct Settings: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List every fit setting: flag, HTTP field, type, default, meaning.")
    @Flag(help: "Print README's Markdown tables (one per mode).") var markdown = false

    func run() {
        guard markdown else { return print(FitVocabulary.helpText) }
        for mode in FitMode.allCases {
            print("\(mode.rawValue):\n\n\(FitVocabulary.markdownTable(mode: mode))\n")
        }
    }
}
