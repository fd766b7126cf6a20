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

        var python: [Int: HTTPLoad.Result] = [:]
        do {
            log("starting a Python Chimera parameter server (1 worker) and fitting it")
            let cluster = try PythonChimeraCluster(
                copy: copy, kind: "sgd-classifier", shards: [shard], workerArguments: ["loss": "log_loss", "eta0": 1e-7],
                masterArguments: ["loss": "log_loss", "max_iter": 5])
            let fit = try HTTPLoad.request(cluster.url + "/v1/chimera/parameter-server/fit")
            guard fit.status == 200 else { throw BenchmarkError("the Python fit answered \(fit.status)") }
            for clients in options.concurrency {
                log("Python predict, \(clients) client(s)")
                python[clients] = try HTTPLoad.run(
                    url: cluster.url + path, body: body, clients: clients, requests: options.pythonRequests[clients] ?? 5)
            }
        }
        var swift: [Int: HTTPLoad.Result] = [:]
        do {
            log("starting our master, 1 worker and a gateway, and fitting")
            let cluster = try SwiftChimeraCluster(mode: .parameterServer, shards: [shard], gateway: true)
            var request = Chimera_V1_FitRequest()
            request.config.maxIterations = 5
            _ = try cluster.client.fit(request)
            for clients in options.concurrency {
                log("Swift predict, \(clients) client(s)")
                swift[clients] = try HTTPLoad.run(
                    url: cluster.gatewayURL! + path, body: body, clients: clients, requests: options.swiftRequests[clients] ?? 30)
            }
        }

        let f = ParameterServerBenchmark.format
        var out = "### HTTP predict: chimera-gateway vs the Python Chimera (\(options.rows)-row batches, `cdc_like` rows, 21 features)\n\n"
        out += "Both servers are measured in this run by the same keep-alive HTTP/1.1 client (`HTTPLoad`); each client sends its "
        out += "requests back to back. Latency: median and p99 per request; throughput: requests per second over all clients.\n\n"
        out += "| clients | Python median ms | Python p99 ms | Python req/s | Swift median ms | Swift p99 ms | Swift req/s | latency Python ÷ Swift | throughput Swift ÷ Python | failed (Py/Swift) |\n"
        out += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for clients in options.concurrency {
            guard let theirs = python[clients], let ours = swift[clients] else { continue }
            out += "| \(clients) | \(f(theirs.percentile(0.5) * 1e3, 1)) | \(f(theirs.percentile(0.99) * 1e3, 1)) | \(f(theirs.requestsPerSecond, 1)) "
            out += "| \(f(ours.percentile(0.5) * 1e3, 2)) | \(f(ours.percentile(0.99) * 1e3, 2)) | \(f(ours.requestsPerSecond, 0)) "
            out += "| \(f(theirs.percentile(0.5) / ours.percentile(0.5), 0))× | \(f(ours.requestsPerSecond / theirs.requestsPerSecond, 0))× "
            out += "| \(theirs.failures)/\(ours.failures) |\n"
        }
        return out
    }
}
