import ChimeraCluster
import ChimeraWire
public import Foundation

/// `chimera bench ps`: our parameter server against the Python Chimera (run from a copy of
/// `shared/baselines/original-chimera` in the same invocation) and the raw-libzmq C round (`psround`).
///
/// Workloads, on the baseline's own data files: `sgd_clf_tiny_overhead` (100 rows per worker: the
/// per-iteration overhead) and `sgd_clf_cdc` (202,944 × 21 logistic regression, 200 iterations).
public enum ParameterServerBenchmark {
    public struct Options: Sendable {
        public var baselineSource: URL
        public var floorDirectory: URL
        public var scratch: URL
        public var workers = [1, 2, 4]
        public var iterations = 200
        /// Iterations of the tiny-shard fits whose median round is set against psround's. psround's
        /// median is over the ~5,000–10,000 rounds of its 1.5 s window; a 200-iteration fit's median
        /// includes its first ~100 rounds, which run up to twice as slow while the scheduler settles
        /// where the threads run (Benchmarks/RESULTS.md, "Design measurements").
        public var overheadIterations = 2000
        /// Fits per configuration (tiny shards: each followed by a psround run); medians are reported.
        public var repeats = 9
        /// Reuse the Python results already in the scratch copy instead of running the baseline again.
        public var reusePython = false

        public init(baselineSource: URL, floorDirectory: URL, scratch: URL) {
            self.baselineSource = baselineSource
            self.floorDirectory = floorDirectory
            self.scratch = scratch
        }
    }

    struct SwiftRun {
        let fitSeconds: Double
        let iterations: Int
        let accuracy: Double?
        /// The median time between consecutive weight updates on the master (what psround's median
        /// round is: setup and the fit's start and end left out).
        let medianRoundSeconds: Double?
    }

    public static func run(_ options: Options, log: (String) -> Void) throws -> String {
        let (copy, results) = try BaselineCopy.results(
            source: options.baselineSource, scratch: options.scratch, file: "results.json", reuse: options.reusePython,
            arguments: [
                "--reps", "1", "--workers", options.workers.map(String.init).joined(separator: ","), "--max-iter",
                "\(options.iterations)", "--only", "sgd_clf_tiny_overhead,sgd_clf_cdc", "--no-sklearn",
            ],
            announce:
                "running the Python Chimera baseline (venv, data, 2 workloads × N = \(options.workers)); several minutes",
            log: log)
        let python = try pythonRows(results)
        let data = copy.appendingPathComponent("data")

        let psround = try PSRound(floorDirectory: options.floorDirectory, scratch: options.scratch, log: log)

        var out =
            "### Parameter server vs the Python Chimera (\(options.iterations) iterations, logistic regression)\n\n"
        out += "Per-iteration overhead, `cdc_tiny` (100 rows per worker, 21 features):\n\n"
        out +=
            "| N | Python Chimera ms/iter | Swift ms/iter (fit ÷ iterations) | Swift median round ms, \(options.iterations)-iteration fits | Swift median round ms, \(options.overheadIterations)-iteration fits | raw libzmq C median round ms | Swift ÷ C (median rounds, \(options.overheadIterations)-iteration fits) | Python ÷ Swift (ms/iter) |\n"
        out += "|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for n in options.workers {
            log(
                "tiny shards, N = \(n): \(options.repeats) × (Swift fits of \(options.iterations) and \(options.overheadIterations) iterations, psround), interleaved"
            )
            let cluster = try SwiftFits(shards: (1...n).map { data.appendingPathComponent("cdc_tiny/N\(n)/w\($0)") })
            var ours: [SwiftRun] = []
            var steady: [SwiftRun] = []
            var floors: [Double] = []
            for _ in 0..<options.repeats {
                ours.append(try cluster.fit(test: nil, iterations: options.iterations, log: log))
                steady.append(try cluster.fit(test: nil, iterations: options.overheadIterations, log: log))
                if let floor = try psround.medianRound(workers: n, floats: 22) { floors.append(floor) }
            }
            let perIteration = median(ours.map { $0.fitSeconds * 1000 / Double($0.iterations) })
            let shortRound = median(ours.compactMap { $0.medianRoundSeconds.map { $0 * 1000 } })
            let round = median(steady.compactMap { $0.medianRoundSeconds.map { $0 * 1000 } })
            let floor = median(floors)
            let theirs = python["sgd_clf_tiny_overhead", n]?.perRoundMilliseconds
            let ratio = round.flatMap { r in floor.map { r / $0 } }
            out +=
                "| \(n) | \(format(theirs, 2)) | \(format(perIteration, 3)) | \(format(shortRound, 3)) | \(format(round, 3)) | \(format(floor, 3)) | \(format(ratio, 2))× | \(format(theirs.flatMap { t in perIteration.map { t / $0 } }, 0))× |\n"
        }
        out +=
            "\nEnd to end, `cdc_like` (202,944 training rows × 21 features; accuracy on the 50,736 held-out rows):\n\n"
        out +=
            "| N | Python Chimera fit s | accuracy | Swift fit s | accuracy | Python ÷ Swift |\n|---:|---:|---:|---:|---:|---:|\n"
        for n in options.workers {
            log("cdc_like, N = \(n): Swift cluster, \(options.repeats) fits")
            let cluster = try SwiftFits(shards: (1...n).map { data.appendingPathComponent("cdc_like/N\(n)/w\($0)") })
            let runs = try (0..<options.repeats).map { _ in
                try cluster.fit(
                    test: data.appendingPathComponent("cdc_like/test"), iterations: options.iterations, log: log)
            }
            let fit = median(runs.map(\.fitSeconds))
            let accuracy = runs.last?.accuracy
            let theirs = python["sgd_clf_cdc", n]
            out +=
                "| \(n) | \(format(theirs?.fitSeconds, 2)) | \(format(theirs?.accuracy, 4)) | \(format(fit, 3)) | \(format(accuracy, 4)) | \(format(theirs.flatMap { t in fit.map { t.fitSeconds / $0 } }, 0))× |\n"
        }
        return out
    }

    struct PythonRow {
        let fitSeconds: Double
        let perRoundMilliseconds: Double?
        let accuracy: Double?
        let predict1000Seconds: Double?
    }

    struct PythonRows {
        let rows: [String: PythonRow]
        subscript(workload: String, workers: Int) -> PythonRow? { rows["\(workload)/\(workers)"] }
    }

    static func pythonRows(_ url: URL, system: String = "chimera") throws -> PythonRows {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        let list = (object as? [[String: Any]]) ?? ((object as? [String: Any])?["results"] as? [[String: Any]]) ?? []
        var rows: [String: PythonRow] = [:]
        for row in list where (row["system"] as? String) == system {
            guard let workload = row["workload"] as? String, let n = row["n_workers"] as? Int,
                let fit = row["fit_s"] as? Double
            else { continue }
            rows["\(workload)/\(n)"] = PythonRow(
                fitSeconds: fit, perRoundMilliseconds: row["per_round_ms"] as? Double,
                accuracy: row["accuracy"] as? Double,
                predict1000Seconds: row["predict_1000_s"] as? Double)
        }
        return PythonRows(rows: rows)
    }

    /// A master and one worker per shard (release processes of this executable) for repeated fits.
    final class SwiftFits {
        let cluster: SwiftChimeraCluster
        let workers: Int

        init(shards: [URL]) throws {
            cluster = try SwiftChimeraCluster(mode: .parameterServer, shards: shards)
            workers = shards.count
        }

        /// Fits, then predicts `test` (when given) for the accuracy.
        func fit(test: URL?, iterations: Int, log: (String) -> Void) throws -> SwiftRun {
            let client = cluster.client
            let deadline = Date().addingTimeInterval(120)
            var request = Chimera_V1_FitRequest()
            request.kind = .parameterServer
            request.config.maxIterations = UInt64(iterations)
            request.config.eta0 = 0.5
            request.config.recordTimeline = true
            // A fit only counts with every worker in it: retry until the handshake of all of them is done.
            var start = monotonicSeconds()
            var reply = try client.fit(request)
            var elapsed = monotonicSeconds() - start
            while reply.report.clocks.filter({ $0.clock == UInt64(iterations) }).count < workers {
                guard Date() < deadline else { throw BenchmarkError("not every worker took part") }
                start = monotonicSeconds()
                reply = try client.fit(request)
                elapsed = monotonicSeconds() - start
            }
            var accuracy: Double?
            if let test {
                let (columns, rows) = try ShardLayout.loadFeatures(test.appendingPathComponent("X_test.csv").path)
                let truth = try ShardLayout.loadLabels(test.appendingPathComponent("y_test.csv").path)
                let prediction = try client.predict(columns: columns, values: rows.flatMap { $0 }, rows: rows.count)
                accuracy = Double(zip(prediction.values, truth).filter { $0 == Double($1) }.count) / Double(truth.count)
            }
            // The fit time is what the client saw, as the Python baseline measures its POST /fit.
            log(String(format: "  fit %.3f s for %llu iterations", elapsed, reply.report.iterations))
            let stamps = reply.report.timeline.map(\.seconds)
            return SwiftRun(
                fitSeconds: elapsed, iterations: Int(reply.report.iterations), accuracy: accuracy,
                medianRoundSeconds: median(zip(stamps.dropFirst(), stamps).map { $0 - $1 }))
        }
    }

    static func format(_ value: Double?, _ digits: Int) -> String {
        value.map { String(format: "%.\(digits)f", $0) } ?? "–"
    }
}
