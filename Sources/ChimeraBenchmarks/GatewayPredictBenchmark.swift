import ChimeraCluster
import ChimeraWire
public import Foundation

/// `chimera bench http`: HTTP predict latency and throughput of our gateway against the Python
/// Chimera's parameter-server predict endpoint, in the same run and with the same client (1,000-row
/// batches of the baseline's `cdc_like` held-out rows; 1 and 32 concurrent clients).
public enum GatewayPredictBenchmark {
    public struct Options: Sendable {
        public var baselineSource: URL
        public var scratch: URL
        public var concurrency = [1, 32]
        public var rows = 1_000
        /// Requests per client (Python, Swift) at each concurrency.
        public var pythonRequests = [1: 30, 32: 5]
        public var swiftRequests = [1: 300, 32: 40]
        /// Turns of Python then Swift; the requests above are spread over them.
        public var rounds = 5

        public init(baselineSource: URL, scratch: URL) {
            self.baselineSource = baselineSource
            self.scratch = scratch
        }
    }

    public static func run(_ options: Options, log: (String) -> Void) throws -> String {
        let copy = options.scratch.appendingPathComponent("original-chimera")
        try BaselineCopy.prepare(of: options.baselineSource, at: copy)
        let data = copy.appendingPathComponent("data")
        _ = try BaselineCopy.python(copy)
        let body = try HeldOut(data.appendingPathComponent("cdc_like/test")).json(rows: options.rows)
        let shard = data.appendingPathComponent("cdc_tiny/N1/w1")
        let path = "/v1/chimera/parameter-server/predict"

        log("starting a Python Chimera parameter server (1 worker) and fitting it")
        let theirCluster = try PythonChimeraCluster(
            copy: copy, kind: "sgd-classifier", shards: [shard], workerArguments: ["loss": "log_loss", "eta0": 1e-7],
            masterArguments: ["loss": "log_loss", "max_iter": 5])
        let fit = try HTTPLoad.request(theirCluster.url + "/v1/chimera/parameter-server/fit")
        guard fit.status == 200 else { throw BenchmarkError("the Python fit answered \(fit.status)") }
        log("starting our master, 1 worker and a gateway, and fitting")
        let ourCluster = try SwiftChimeraCluster(mode: .parameterServer, shards: [shard], gateway: true)
        var request = Chimera_V1_FitRequest()
        request.config.maxIterations = 5
        _ = try ourCluster.client.fit(request)

        // Both servers stay up and are measured in turns, so a slow stretch of the machine falls on both.
        var python: [Int: HTTPLoad.Result] = [:]
        var swift: [Int: HTTPLoad.Result] = [:]
        var roundRatios: [Int: [Double]] = [:]
        for clients in options.concurrency {
            log("predict, \(clients) client(s): \(options.rounds) rounds of Python then Swift")
            let rounds = options.rounds
            let (results, ratios) = try HTTPLoad.interleaved(
                [
                    .init(url: theirCluster.url + path, body: body, clients: clients,
                          requestsPerRound: max(1, (options.pythonRequests[clients] ?? 5) / rounds), freezing: ourCluster.processIDs),
                    .init(url: ourCluster.gatewayURL! + path, body: body, clients: clients,
                          requestsPerRound: max(1, (options.swiftRequests[clients] ?? 30) / rounds), freezing: theirCluster.processIDs),
                ], rounds: rounds)
            python[clients] = results[0]
            swift[clients] = results[1]
            roundRatios[clients] = ratios[1]
        }

        let f = ParameterServerBenchmark.format
        var out = "### HTTP predict: chimera-gateway vs the Python Chimera (\(options.rows)-row batches, `cdc_like` rows, 21 features)\n\n"
        out += "Both servers are measured in this run by the same keep-alive HTTP/1.1 client (`HTTPLoad`); each client sends its "
        out += "requests back to back. Both stay up and are measured in \(options.rounds) alternating rounds (Python, then Swift; "
        out += "the other server's processes stopped with SIGSTOP meanwhile), latencies pooled over the rounds. Latency: median and p99 per request; throughput: requests per second over all "
        out += "clients; per round: the range of Python median ÷ Swift median over the rounds.\n\n"
        out += "| clients | Python median ms | Python p99 ms | Python req/s | Swift median ms | Swift p99 ms | Swift req/s | latency Python ÷ Swift | per round | throughput Swift ÷ Python | failed (Py/Swift) |\n"
        out += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for clients in options.concurrency {
            guard let theirs = python[clients], let ours = swift[clients] else { continue }
            out += "| \(clients) | \(f(theirs.percentile(0.5) * 1e3, 1)) | \(f(theirs.percentile(0.99) * 1e3, 1)) | \(f(theirs.requestsPerSecond, 1)) "
            out += "| \(f(ours.percentile(0.5) * 1e3, 2)) | \(f(ours.percentile(0.99) * 1e3, 2)) | \(f(ours.requestsPerSecond, 0)) "
            let perRound = roundRatios[clients] ?? []
            out += "| \(f(theirs.percentile(0.5) / ours.percentile(0.5), 0))× "
            out += "| \(f(perRound.min(), 0))–\(f(perRound.max(), 0))× | \(f(ours.requestsPerSecond / theirs.requestsPerSecond, 0))× "
            out += "| \(theirs.failures)/\(ours.failures) |\n"
        }
        return out
    }
}
