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

    /// Sends a request; returns the JSON object of a 2xx reply, throws the gateway's error message otherwise.
    func call(_ method: String, _ path: String, body: Any? = nil) async throws -> [String: Any] {
        guard let url = URL(string: gateway + path) else { throw CommandError("bad --gateway \(gateway)") }
        var request = URLRequest(url: url, timeoutInterval: 3_600)
        request.httpMethod = method
        if let token = token ?? ProcessInfo.processInfo.environment["CHIMERA_GATEWAY_TOKEN"] {
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            let kind = (object["details"] as? [String: Any])?["errorMessage"] as? String ?? "HTTP \(status)"
            throw CommandError("\(kind): \(object["message"] as? String ?? String(decoding: data, as: UTF8.self))")
        }
        return object
    }
}

struct HTTPFit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit",
        abstract: "Start a fit (POST /v1/chimera/jobs) and follow it: a progress bar on a terminal, plain lines otherwise.",
        discussion: FitVocabulary.helpText)

    @OptionGroup var connection: GatewayConnection
    @OptionGroup var fit: FitOptions
    @Option(help: "Seconds between progress polls.") var poll = 0.1
    @Option(help: "First wait (up to 60 s) until this many workers are ready.") var waitWorkers = 0

    func run() async throws {
        let settings = try fit.settings()
        var cluster = try await connection.call("GET", "/v1/chimera/cluster")
        let deadline = Date().addingTimeInterval(60)
        func ready(_ cluster: [String: Any]) -> Int {
            (cluster["workers"] as? [[String: Any]] ?? []).filter { $0["ready"] as? Bool == true }.count
        }
        while ready(cluster) < waitWorkers {
            guard Date() < deadline else {
                throw CommandError("only \(ready(cluster)) of \(waitWorkers) workers became ready within 60 s")
            }
            try await Task.sleep(for: .milliseconds(50))
            cluster = try await connection.call("GET", "/v1/chimera/cluster")
        }
        let aggregation = cluster["mode"] as? String == "aggregation"
        // Checked here for command-line wording; the gateway checks the same vocabulary.
        _ = try settings.commandLineWire(mode: aggregation ? .aggregation : .parameterServer)
        let body = settings.body
        let started = try await connection.call("POST", "/v1/chimera/jobs", body: body)
        guard let id = started["job_id"] as? Int else { throw CommandError("the gateway answered no job id") }
        let interrupted = interruptionFlag()
        logLine("job \(id) started: Ctrl-C cancels it (from elsewhere: chimera http cancel \(id))")
        let progress = ProgressDisplay(total: aggregation ? nil : settings["iterations"]?.integer, label: "job \(id)")
        var status: [String: Any] = started
        while true {
            status = try await connection.call("GET", "/v1/chimera/jobs/\(id)")
            let state = status["state"] as? String ?? "unknown"
            progress.update(iteration: status["iteration"] as? Int ?? 0, loss: status["loss"] as? Double, state: state)
            if state != "running" && state != "queued" { break }
            if interrupted.isStopped {
                progress.finish()
                _ = try await connection.call("POST", "/v1/chimera/jobs/\(id)/cancel")
                logLine("job \(id) cancelled (Ctrl-C)")
                throw ExitCode(130)
            }
            try await Task.sleep(for: .seconds(max(poll, 0.01)))
        }
        progress.finish()
        let state = status["state"] as? String ?? "unknown"
        var line = "job \(id): \(state)"
        if let members = status["members"] as? Int {
            line += ", \(members) trees"
        } else {
            line += ", \(status["iteration"] as? Int ?? 0) iterations, loss \(String(format: "%.6g", status["loss"] as? Double ?? .nan))"
        }
        line += String(format: ", %.3f s", status["wall_seconds"] as? Double ?? 0)
        print(line)
        if let failed = status["failed_workers"] as? [String], !failed.isEmpty { print("failed workers: \(failed.joined(separator: "; "))") }
        for backoff in status["backoffs"] as? [String] ?? [] { print("backed off: \(backoff)") }
        if let error = status["error"] as? String { print("error: \(error)") }
        guard state == "succeeded" else { throw ExitCode(1) }
    }
}

struct HTTPCancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Cancel a job started through this gateway (POST /v1/chimera/jobs/ID/cancel).")

    @OptionGroup var connection: GatewayConnection
    @Argument(help: "The job's id.") var job: Int

    func run() async throws {
        let status = try await connection.call("POST", "/v1/chimera/jobs/\(job)/cancel")
        print("job \(job): \(status["state"] as? String ?? "unknown")")
    }
}

struct HTTPPredict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict", abstract: "Predict a CSV's rows through the gateway; with labels, print accuracy or R².")

    @OptionGroup var connection: GatewayConnection
    @Option(help: "Features CSV (X_test.csv).") var x: String
    @Option(help: "Labels CSV (y_test.csv).") var y: String?

    func run() async throws {
        let cluster = try await connection.call("GET", "/v1/chimera/cluster")
        let path = cluster["mode"] as? String == "aggregation" ? "aggregation" : "parameter-server"
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
        guard column.count == answers.count else { throw CommandError("\(y) has \(column.count) rows, the reply \(answers.count)") }
        let timing = String(format: "predict %.1f ms over HTTP", elapsed * 1e3)
        if case .names(let truth) = column {
            // Named classes come back as their names.
            printAccuracy(truth: truth, predicted: answers.map { $0 as? String ?? "\($0)" }, timing)
            return
        }
        let truth = try ShardLayout.loadLabels(y).map(Double.init)
        let values = answers.compactMap { $0 as? Double }
        guard values.count == truth.count else { throw CommandError("\(y) holds numbers; the model answers class names") }
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
