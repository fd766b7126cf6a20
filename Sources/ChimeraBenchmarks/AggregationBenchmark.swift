import ChimeraCluster
import ChimeraWire
public import Foundation

/// `chimera bench bag`: our bagging against the Python Chimera's (run from a copy of
/// `shared/baselines/original-chimera` in the same invocation) and scikit-learn's BaggingClassifier,
/// on the baseline's `cdc_like_50k` data (40,000 × 21 train, 10,000 held out) with its tree settings
/// (max_depth 5, max_leaf_nodes 15, bootstrap, one tree per worker).
public enum AggregationBenchmark {
    public struct Options: Sendable {
        public var baselineSource: URL
        public var scratch: URL
        public var workers = [1, 2, 4]
        public var fitRepeats = 5
        public var predictRequests = 300
        /// Python predict requests (by our client), spread over the rounds.
        public var pythonPredictRequests = 10
        /// Alternating rounds of Python then Swift predicts.
        public var predictRounds = 5
        /// Fits per system whose held-out accuracy is compared as a distribution (the Python Chimera's
        /// fits are unseeded; ours use seeds 1…K).
        public var accuracyFits = 10
        public var reusePython = false

        public init(baselineSource: URL, scratch: URL) {
            self.baselineSource = baselineSource
            self.scratch = scratch
        }
    }

    struct SwiftRow {
        let firstFitSeconds: Double
        let fitSeconds: Double
        let accuracy: Double
        let predictSeconds: Double
        /// Through the gateway embedded in the master (`chimera master --http-port`).
        let embeddedPredictSeconds: Double
        let fanOutPredictSeconds: Double
    }

    public static func run(_ options: Options, log: (String) -> Void) throws -> String {
        let (copy, results) = try BaselineCopy.results(
            source: options.baselineSource, scratch: options.scratch, file: "results_bag.json",
            reuse: options.reusePython,
            arguments: [
                "--reps", "1", "--workers", options.workers.map(String.init).joined(separator: ","), "--only",
                "bag_tree_cdc50k",
                "--tag", "_bag",
            ],
            announce:
                "running the Python Chimera bagging baseline and scikit-learn (N = \(options.workers)); a few minutes",
            log: log)
        let python = try ParameterServerBenchmark.pythonRows(results)
        let sklearn = try ParameterServerBenchmark.pythonRows(results, system: "sklearn")
        let data = copy.appendingPathComponent("data/cdc_like_50k")
        let heldOut = try HeldOut(data.appendingPathComponent("test"))
        let body = try heldOut.json(rows: 1_000)
        var fanOutBody = try JSONSerialization.jsonObject(with: Data(body)) as! [String: Any]
        fanOutBody["fan_out"] = true
        let fanOut = Array(try JSONSerialization.data(withJSONObject: fanOutBody))

        // Per N: a Python Chimera cluster (fitted once) and ours, both up; fits and accuracy of ours, then the
        // predict endpoints measured in alternating rounds by our client, the other cluster frozen meanwhile
        // (bench.py's own predict number includes its client's JSON encoding).
        var pythonPredict: [Int: Double] = [:]
        var roundRatios: [Int: [Double]] = [:]
        var embeddedRoundRatios: [Int: [Double]] = [:]
        var accuracies: [Int: (python: [Double], swift: [Double])] = [:]
        let wholeHeldOut = try heldOut.json(rows: heldOut.rows.count)
        var rows: [Int: SwiftRow] = [:]
        for n in options.workers {
            let shards = (1...n).map { data.appendingPathComponent("N\(n)/w\($0)") }
            log("cdc_like_50k, N = \(n): Python Chimera cluster, fitted once")
            let theirCluster = try PythonChimeraCluster(
                copy: copy, kind: "aggregation", shards: shards,
                workerArguments: ["max_depth": 5, "max_leaf_nodes": 15],
                masterArguments: [:])
            let fit = try HTTPLoad.request(theirCluster.url + "/v1/chimera/aggregation/fit")
            guard fit.status == 200 else { throw BenchmarkError("the Python fit answered \(fit.status)") }

            log(
                "cdc_like_50k, N = \(n): Swift aggregation cluster with a gateway process and one embedded in the master"
            )
            let cluster = try SwiftChimeraCluster(
                mode: .aggregation, shards: shards, gatewayProcess: true, embeddedGateway: true)
            var request = Chimera_V1_FitRequest()
            request.kind = .aggregation
            request.config.maxDepth = 5
            request.config.maxLeafNodes = 15
            var fits: [Double] = []
            for _ in 0..<options.fitRepeats {
                let start = monotonicSeconds()
                let reply = try cluster.client.fit(request, timeoutMilliseconds: 600_000)
                fits.append(monotonicSeconds() - start)
                guard reply.report.members == UInt32(n) else {
                    throw BenchmarkError("only \(reply.report.members) of \(n) trees")
                }
            }
            let prediction = try cluster.client.predict(
                columns: heldOut.columns, values: heldOut.rows.flatMap { $0 }, rows: heldOut.rows.count,
                kind: .aggregation)
            let url = cluster.gatewayURL! + "/v1/chimera/aggregation/predict"
            // Fan-out first: freezing our workers below makes the master count them dead for a moment.
            let remote = try HTTPLoad.run(url: url, body: fanOut, clients: 1, requests: options.predictRequests)
            let rounds = options.predictRounds
            let (results, ratios) = try HTTPLoad.interleaved(
                [
                    .init(
                        url: theirCluster.url + "/v1/chimera/aggregation/predict", body: body, clients: 1,
                        requestsPerRound: max(1, options.pythonPredictRequests / rounds), freezing: cluster.processIDs),
                    .init(
                        url: url, body: body, clients: 1, requestsPerRound: max(1, options.predictRequests / rounds),
                        freezing: theirCluster.processIDs),
                    .init(
                        url: cluster.embeddedGatewayURL! + "/v1/chimera/aggregation/predict", body: body, clients: 1,
                        requestsPerRound: max(1, options.predictRequests / rounds), freezing: theirCluster.processIDs),
                ], rounds: rounds)
            let local = results[1]
            pythonPredict[n] = results[0].percentile(0.5)
            roundRatios[n] = ratios[1]
            embeddedRoundRatios[n] = ratios[2]
            guard local.failures == 0 && remote.failures == 0 && results[0].failures == 0 && results[2].failures == 0
            else {
                throw BenchmarkError("predict requests failed")
            }
            rows[n] = SwiftRow(
                firstFitSeconds: fits[0], fitSeconds: median(fits) ?? .nan,
                accuracy: Self.accuracy(prediction.values, heldOut.labels),
                predictSeconds: local.percentile(0.5), embeddedPredictSeconds: results[2].percentile(0.5),
                fanOutPredictSeconds: remote.percentile(0.5))
            log(
                String(
                    format: "  fit %.4f s, accuracy %.4f, predict 1,000 rows %.2f ms", rows[n]!.fitSeconds,
                    rows[n]!.accuracy, rows[n]!.predictSeconds * 1e3))

            log("cdc_like_50k, N = \(n): accuracy over \(options.accuracyFits) fits of each")
            var theirAccuracies: [Double] = []
            for _ in 0..<options.accuracyFits {
                guard try HTTPLoad.request(theirCluster.url + "/v1/chimera/aggregation/fit").status == 200 else {
                    throw BenchmarkError("a Python fit failed")
                }
                let reply = try HTTPLoad.request(
                    theirCluster.url + "/v1/chimera/aggregation/predict", body: wholeHeldOut)
                let object = try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any]
                guard reply.status == 200, let values = object?["y_pred_rows"] as? [Double],
                    values.count == heldOut.labels.count
                else {
                    throw BenchmarkError("a Python predict answered \(reply.status)")
                }
                theirAccuracies.append(Self.accuracy(values, heldOut.labels))
            }
            var ourAccuracies: [Double] = []
            for seed in 1...options.accuracyFits {
                try cluster.waitForWorkers(n)
                request.config.seed = UInt64(seed)
                guard try cluster.client.fit(request, timeoutMilliseconds: 600_000).report.members == UInt32(n) else {
                    throw BenchmarkError("a fit lost a worker")
                }
                let values = try cluster.client.predict(
                    columns: heldOut.columns, values: heldOut.rows.flatMap { $0 }, rows: heldOut.rows.count,
                    kind: .aggregation
                ).values
                ourAccuracies.append(Self.accuracy(values, heldOut.labels))
            }
            accuracies[n] = (theirAccuracies, ourAccuracies)
        }

        let f = ParameterServerBenchmark.format
        var out =
            "### Bagging vs the Python Chimera and scikit-learn (`cdc_like_50k`: 40,000 × 21 train, 10,000 held out)\n\n"
        out +=
            "Trees: max_depth 5, max_leaf_nodes 15, all features, bootstrap, one tree per worker (the original's example). "
        out +=
            "Fit: client-observed time of one fit; Swift: the first fit (which also bins the shard) and the median of "
        out +=
            "\(options.fitRepeats) (later fits reuse the bins). Predict: 1,000 rows over HTTP, median: bench.py's own "
        out +=
            "measurement (5 requests with `requests`, its JSON encoding included) and, for both, our keep-alive client with a "
        out +=
            "pre-encoded body (Python \(options.pythonPredictRequests) requests, Swift \(options.predictRequests), through `chimera gateway` "
        out += "and through the gateway embedded in the same master, `chimera master --http-port`; "
        out +=
            "both clusters up, measured in \(options.predictRounds) alternating rounds with the other system frozen by SIGSTOP, "
        out += "latencies pooled; \"per round\": the range of the per-round ratios). "
        out += "Accuracy: P(class 1) > 0.5 on the held-out rows, as bench.py counts it.\n\n"
        out +=
            "| N | Python fit s | Swift first fit s | Swift fit s | Python ÷ Swift (first, median) | sklearn Bagging(N) fit s | Python acc | Swift acc | sklearn acc | Python predict ms (bench.py / ours) | Swift predict ms | Python ÷ Swift (bench.py / ours) | per round (ours) | Swift embedded-gateway predict ms | Python ÷ it (bench.py / ours) | per round (ours) | Swift fan-out predict ms |\n"
        out += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for n in options.workers {
            guard let ours = rows[n] else { continue }
            let theirs = python["bag_tree_cdc50k", n]
            let bagging = sklearn["bag_tree_cdc50k [BaggingClassifier]", n]
            let predictRatio = theirs?.predict1000Seconds.map { $0 / ours.predictSeconds }
            let sameClient = pythonPredict[n].map { $0 / ours.predictSeconds }
            out += "| \(n) | \(f(theirs?.fitSeconds, 3)) | \(f(ours.firstFitSeconds, 4)) | \(f(ours.fitSeconds, 4)) "
            out +=
                "| \(f(theirs.map { $0.fitSeconds / ours.firstFitSeconds }, 0))×, \(f(theirs.map { $0.fitSeconds / ours.fitSeconds }, 0))× "
            out +=
                "| \(f(bagging?.fitSeconds, 3)) | \(f(theirs?.accuracy, 4)) | \(f(ours.accuracy, 4)) | \(f(bagging?.accuracy, 4)) "
            out +=
                "| \(f(theirs?.predict1000Seconds.map { $0 * 1e3 }, 1)) / \(f(pythonPredict[n].map { $0 * 1e3 }, 1)) "
            let perRound = roundRatios[n] ?? []
            out += "| \(f(ours.predictSeconds * 1e3, 2)) | \(f(predictRatio, 0))× / \(f(sameClient, 0))× "
            out += "| \(f(perRound.min(), 0))–\(f(perRound.max(), 0))× "
            let embeddedRound = embeddedRoundRatios[n] ?? []
            out += "| \(f(ours.embeddedPredictSeconds * 1e3, 2)) "
            out +=
                "| \(f(theirs?.predict1000Seconds.map { $0 / ours.embeddedPredictSeconds }, 0))× / \(f(pythonPredict[n].map { $0 / ours.embeddedPredictSeconds }, 0))× "
            out += "| \(f(embeddedRound.min(), 0))–\(f(embeddedRound.max(), 0))× "
            out += "| \(f(ours.fanOutPredictSeconds * 1e3, 2)) |\n"
        }
        out +=
            "\nHeld-out accuracy as a distribution, in this run: \(options.accuracyFits) fits of each system on the same shards "
        out +=
            "(the Python Chimera's bootstraps are unseeded, so each of its fits is a new draw; ours use seeds 1…\(options.accuracyFits)), "
        out += "mean ± standard deviation (min–max).\n\n"
        out += "| N | Python Chimera | Swift |\n|---:|---:|---:|\n"
        for n in options.workers {
            guard let (theirs, ours) = accuracies[n] else { continue }
            out += "| \(n) | \(Self.summary(theirs)) | \(Self.summary(ours)) |\n"
        }
        return out
    }

    /// P(class 1) > 0.5 against the labels, as bench.py counts it.
    static func accuracy(_ values: [Double], _ labels: [Float]) -> Double {
        Double(zip(values, labels).filter { Float($0 > 0.5 ? 1 : 0) == $1 }.count) / Double(labels.count)
    }

    static func summary(_ values: [Double]) -> String {
        guard !values.isEmpty else { return "–" }
        let mean = values.reduce(0, +) / Double(values.count)
        let sd = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(max(values.count - 1, 1))).squareRoot()
        return String(format: "%.4f ± %.4f (%.4f–%.4f)", mean, sd, values.min()!, values.max()!)
    }
}
