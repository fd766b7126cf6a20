import ArgumentParser
import ChimeraCluster
import ChimeraML
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `chimera http …`: fit and predict through a gateway's HTTP API, as any HTTP client would.
struct HTTPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http", abstract: "Fit and predict through a chimera gateway (HTTP), with progress.",
        subcommands: [HTTPFit.self, HTTPPredict.self, HTTPCancel.self])
}

struct GatewayConnection: ParsableArguments {
    @Option(help: "The gateway's URL.") var gateway = "http://127.0.0.1:8080"
    @Option(help: "Bearer token (default: env CHIMERA_GATEWAY_TOKEN).") var token: String?

    /// The gateway's error body, in the Python Chimera's shape.
    struct ErrorBody: Decodable {
        struct Details: Decodable {
            let errorMessage: String
        }
        let message: String
        let details: Details?
    }

    /// Sends a request; returns a 2xx reply's body, throws the gateway's error message otherwise.
    func send(_ method: String, _ path: String, body: Data? = nil) async throws -> Data {
        guard let url = URL(string: gateway + path) else { throw CommandError("bad --gateway \(gateway)") }
        var request = URLRequest(url: url, timeoutInterval: 3_600)
        request.httpMethod = method
        if let token = token ?? ProcessInfo.processInfo.environment["CHIMERA_GATEWAY_TOKEN"] {
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = body
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            guard let error = try? JSONDecoder().decode(ErrorBody.self, from: data) else {
                throw CommandError("HTTP \(status): \(String(decoding: data, as: UTF8.self))")
            }
            throw CommandError("\(error.details?.errorMessage ?? "HTTP \(status)"): \(error.message)")
        }
        return data
    }

    /// A request whose reply is one of the gateway's Codable answers.
    func call<Answer: Decodable>(_ method: String, _ path: String, body: Data? = nil, as: Answer.Type) async throws
        -> Answer
    {
        let data = try await send(method, path, body: body)
        do {
            return try ViewCoding.decoder.decode(Answer.self, from: data)
        } catch {
            throw CommandError("the gateway's answer to \(method) \(path) is not a \(Answer.self): \(error)")
        }
    }

    /// A request with a JSON object body, answering a JSON object (predictions: rows of numbers or names).
    func call(_ method: String, _ path: String, body: [String: Any]) async throws -> [String: Any] {
        let data = try await send(method, path, body: try JSONSerialization.data(withJSONObject: body))
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }
}

struct HTTPFit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit",
        abstract:
            "Start a fit (POST /v1/chimera/jobs) and follow it: a progress bar on a terminal, plain lines otherwise.",
        discussion: FitVocabulary.helpText)

    @OptionGroup var connection: GatewayConnection
    @OptionGroup var fit: FitOptions
    @Option(help: "Seconds between progress polls.") var poll = 0.1
    @Option(help: "First wait (up to 60 s) until this many workers are ready.") var waitWorkers = 0

    func run() async throws {
        let settings = try fit.settings()
        var cluster = try await connection.call("GET", "/v1/chimera/cluster", as: ClusterView.self)
        let deadline = Date().addingTimeInterval(60)
        while cluster.readyWorkers < waitWorkers {
            guard Date() < deadline else {
                throw CommandError("only \(cluster.readyWorkers) of \(waitWorkers) workers became ready within 60 s")
            }
            try await Task.sleep(for: .milliseconds(50))
            cluster = try await connection.call("GET", "/v1/chimera/cluster", as: ClusterView.self)
        }
        // Checked here for command-line wording; the gateway checks the same vocabulary.
        try settings.check(mode: cluster.fitMode)
        let body = try JSONSerialization.data(withJSONObject: settings.body)
        let started = try await connection.call("POST", "/v1/chimera/jobs", body: body, as: JobStarted.self)
        let id = started.jobID
        let interrupted = interruptionFlag()
        logLine("job \(id) started: Ctrl-C cancels it (from elsewhere: chimera http cancel \(id))")
        let progress = ProgressDisplay(
            total: cluster.isAggregation ? nil : settings["iterations"]?.integer, label: "job \(id)")
        var job: JobView
        while true {
            job = try await connection.call("GET", "/v1/chimera/jobs/\(id)", as: JobView.self)
            progress.update(iteration: job.iteration, loss: job.loss, state: job.state)
            if !job.isRunning { break }
            if interrupted.isStopped {
                progress.finish()
                _ = try await connection.send("POST", "/v1/chimera/jobs/\(id)/cancel")
                logLine("job \(id) cancelled (Ctrl-C)")
                throw ExitCode(130)
            }
            try await Task.sleep(for: .seconds(max(poll, 0.01)))
        }
        progress.finish()
        var line = "job \(id): \(job.state)"
        if let members = job.members {
            line += ", \(members) trees"
        } else {
            line += ", \(job.iteration) iterations, loss \(String(format: "%.6g", job.loss))"
        }
        line += String(format: ", %.3f s", job.wallSeconds)
        print(line)
        if let failed = job.failedWorkers, !failed.isEmpty {
            print("failed workers: \(failed.joined(separator: "; "))")
        }
        for backoff in job.backoffs ?? [] { print("backed off: \(backoff)") }
        if let error = job.error { print("error: \(error)") }
        guard job.state == "succeeded" else { throw ExitCode(1) }
    }
}

struct HTTPCancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Cancel a job started through this gateway (POST /v1/chimera/jobs/ID/cancel).")

    @OptionGroup var connection: GatewayConnection
    @Argument(help: "The job's id.") var job: Int

    func run() async throws {
        let status = try await connection.call("POST", "/v1/chimera/jobs/\(job)/cancel", as: JobView.self)
        print("job \(job): \(status.state)")
    }
}

struct HTTPPredict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict", abstract: "Predict a CSV's rows through the gateway; with labels, print accuracy or R²."
    )

    @OptionGroup var connection: GatewayConnection
    @Option(help: "Features CSV (X_test.csv).") var x: String
    @Option(help: "Labels CSV (y_test.csv).") var y: String?

    func run() async throws {
        let cluster = try await connection.call("GET", "/v1/chimera/cluster", as: ClusterView.self)
        let path = cluster.mode
        let (columns, rows) = try ShardLayout.loadFeatures(x)
        let body: [String: Any] = [
            "X_pred_columns": columns, "X_pred_rows": rows.map { $0.map(Double.init) }, "probabilities": true,
        ]
        let start = Date()
        let reply = try await connection.call("POST", "/v1/chimera/\(path)/predict", body: body)
        let elapsed = Date().timeIntervalSince(start)
        let answers = reply["y_pred_rows"] as? [Any] ?? []
        guard let y else {
            for answer in answers { print(answer) }
            return
        }
        let column = try ShardLayout.loadLabelColumn(y)
        guard column.count == answers.count else {
            throw CommandError("\(y) has \(column.count) rows, the reply \(answers.count)")
        }
        let timing = String(format: "predict %.1f ms over HTTP", elapsed * 1e3)
        if case .names(let truth) = column {
            // Named classes come back as their names.
            printAccuracy(truth: truth, predicted: answers.map { $0 as? String ?? "\($0)" }, timing)
            return
        }
        let truth = try ShardLayout.loadLabels(y).map(Double.init)
        let values = answers.compactMap { $0 as? Double }
        guard values.count == truth.count else {
            throw CommandError("\(y) holds numbers; the model answers class names")
        }
        guard let classes = reply["classes"] as? [Double], !classes.isEmpty else {
            let mean = truth.reduce(0, +) / Double(truth.count)
            let residual = zip(truth, values).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            let total = truth.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
            print(String(format: "R² %.4f (%d rows, %@)", 1 - residual / total, truth.count, timing))
            return
        }
        // The most probable class of each row (the bagging master answers P(class 1) in y_pred_rows).
        let probabilities = reply["y_proba_rows"] as? [[Double]]
        let labels = probabilities?.map { row in classes[row.indices.max { row[$0] < row[$1] } ?? 0] } ?? values
        printAccuracy(truth: truth, predicted: labels, timing)
    }
}

/// A progress bar with iteration, loss and ETA on a terminal (stderr), plain lines otherwise.
final class ProgressDisplay {
    let total: Int?
    let label: String
    let interactive = isatty(STDERR_FILENO) != 0
    let started = Date()
    var lastLine = Date.distantPast
    var lastIteration = -1

    init(total: Int?, label: String) {
        self.total = total
        self.label = label
    }

    func update(iteration: Int, loss: Double?, state: String) {
        let elapsed = Date().timeIntervalSince(started)
        var text = "\(label) \(state)"
        if let total, total > 0 {
            let fraction = min(Double(iteration) / Double(total), 1)
            let eta = iteration > 0 ? elapsed / Double(iteration) * Double(total - iteration) : .nan
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            text = String(format: "%@ [%@] %d/%d", label, bar, iteration, total)
            if let loss, iteration > 0 { text += String(format: "  loss %.5g", loss) }
            text += eta.isFinite ? String(format: "  ETA %.1f s", eta) : "  ETA –"
        } else {
            text += String(format: "  %.1f s", elapsed)
        }
        if interactive {
            FileHandle.standardError.write(Data(("\r" + text + "\u{1B}[K").utf8))
        } else if iteration != lastIteration && Date().timeIntervalSince(lastLine) >= 1 {
            // Plain lines for logs and pipes: at most one a second, only when something moved.
            FileHandle.standardError.write(Data((text + "\n").utf8))
            lastLine = Date()
        }
        lastIteration = iteration
    }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
