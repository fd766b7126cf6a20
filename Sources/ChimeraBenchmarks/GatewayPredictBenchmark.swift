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
        log("starting our master (with its embedded gateway), 1 worker and a gateway process, and fitting")
        let ourCluster = try SwiftChimeraCluster(
            mode: .parameterServer, shards: [shard], gatewayProcess: true, embeddedGateway: true)
        var request = Chimera_V1_FitRequest()
        request.config.maxIterations = 5
        _ = try ourCluster.client.fit(request)

        // All servers stay up and are measured in turns (the other system frozen), so a slow stretch of
        // the machine falls on all of them. Our two gateways front the same master.
        let servers = [
            ("Python Chimera", theirCluster.url, options.pythonRequests, ourCluster.processIDs),
            ("chimera-gateway (own process)", ourCluster.gatewayURL!, options.swiftRequests, theirCluster.processIDs),
            (
                "gateway embedded in the master (`--http-port`)", ourCluster.embeddedGatewayURL!, options.swiftRequests,
                theirCluster.processIDs
            ),
        ]
        var results: [Int: [HTTPLoad.Result]] = [:]
        var roundRatios: [Int: [[Double]]] = [:]
        for clients in options.concurrency {
            log("predict, \(clients) client(s): \(options.rounds) rounds of Python, gateway, embedded gateway")
            let rounds = options.rounds
            let targets = servers.map { server in
                HTTPLoad.Target(
                    url: server.1 + path, body: body, clients: clients,
                    requestsPerRound: max(1, (server.2[clients] ?? 30) / rounds), freezing: server.3)
            }
            (results[clients], roundRatios[clients]) = try HTTPLoad.interleaved(targets, rounds: rounds)
        }

        let f = ParameterServerBenchmark.format
        var out =
            "### HTTP predict: chimera-gateway vs the Python Chimera (\(options.rows)-row batches, `cdc_like` rows, 21 features)\n\n"
        out +=
            "All servers are measured in this run by the same keep-alive HTTP/1.1 client (`HTTPLoad`); each client sends its "
        out +=
            "requests back to back. All stay up and are measured in \(options.rounds) alternating rounds (Python, our gateway "
        out +=
            "process, the gateway embedded in the same master; the other system's processes stopped with SIGSTOP meanwhile), latencies "
        out +=
            "pooled over the rounds. Latency: median and p99 per request; throughput: requests per second over all clients; "
        out += "per round: the range of Python median ÷ this server's median over the rounds.\n\n"
        out +=
            "| clients | server | median ms | p99 ms | req/s | latency Python ÷ this | per round | throughput this ÷ Python | failed |\n"
        out += "|---:|---|---:|---:|---:|---:|---:|---:|---:|\n"
        for clients in options.concurrency {
            guard let measured = results[clients], let theirs = measured.first else { continue }
            for (index, result) in measured.enumerated() {
                let perRound = roundRatios[clients]?[index] ?? []
                let digits = index == 0 ? 1 : 2
                out +=
                    "| \(clients) | \(servers[index].0) | \(f(result.percentile(0.5) * 1e3, digits)) | \(f(result.percentile(0.99) * 1e3, digits)) "
                out += "| \(f(result.requestsPerSecond, index == 0 ? 1 : 0)) "
                if index == 0 {
                    out += "| – | – | – "
                } else {
                    out +=
                        "| \(f(theirs.percentile(0.5) / result.percentile(0.5), 0))× | \(f(perRound.min(), 0))–\(f(perRound.max(), 0))× "
                    out += "| \(f(result.requestsPerSecond / theirs.requestsPerSecond, 0))× "
                }
                out += "| \(result.failures) |\n"
            }
        }
        return out
    }
}
