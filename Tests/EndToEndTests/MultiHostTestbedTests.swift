import ChimeraCluster
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Chimera across "hosts": network namespaces with their own IPs (deploy/testbed/testbed.sh), every
/// process listening beyond loopback, so CURVE keys and the bearer token are on as the product demands.
@Suite(
    "several hosts: network namespaces, CURVE and tokens, partitions and restarts", .serialized,
    .enabled(
        if: Testbed.unavailable == nil || ProcessInfo.processInfo.environment["CI"] != nil,
        "\(Testbed.unavailable ?? "")"))
struct MultiHostTestbedTests {
    static let data = repositoryRoot.appendingPathComponent("deploy/data/breast-cancer")

    /// A bed with a master host, a gateway host and three worker hosts, keys and a token.
    final class Cluster {
        let bed: Testbed
        let folder: URL
        let token: String
        var master: ChildProcess?
        let mode: String
        let sameShard: Bool
        var url: String { "http://\(bed.ip("gateway")):8080" }

        /// `servers`: parameter-server hosts s1, s2, … each running `chimera server` with its own key.
        /// `sameShard`: every worker host reads worker-1's shard (pipeline stages hold the same rows).
        init(mode: String = "parameter-server", servers: Int = 0, sameShard: Bool = false) throws {
            self.mode = mode
            self.sameShard = sameShard
            bed = try Testbed(
                hosts: ["master", "gateway", "w1", "w2", "w3"] + (0..<servers).map { "s\($0 + 1)" })
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("chimera-bed-\(bed.prefix)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for role in ["master", "worker", "gateway", "server"] {
                let made = try runChimera(["keys", "--output", folder.appendingPathComponent(role).path])
                guard made.status == 0 else { throw Testbed.Failure(description: made.stderr) }
            }
            token = "bed-\(UInt64.random(in: 1...UInt64.max))"
            try token.write(to: folder.appendingPathComponent("token"), atomically: true, encoding: .utf8)
            try startMaster()
            try bed.start(
                "gateway", on: "gateway",
                [
                    "gateway", "--master", "tcp://\(bed.ip("master")):5557", "--host", bed.ip("gateway"), "--port",
                    "8080", "--token-file", path("token"), "--curve-server-key", try key("master"), "--curve-keys",
                    path("gateway"),
                ])
            for index in 1...3 { try startWorker(index) }
            for index in 0..<servers {
                let host = "s\(index + 1)"
                try bed.start(
                    host, on: host,
                    [
                        "server", "--master", "tcp://\(bed.ip("master")):5555", "--name", host, "--host", bed.ip(host),
                        "--curve-server-key", try key("master"), "--curve-keys", path("server"), "--curve-allow",
                        try key("worker"),
                    ])
            }
        }

        deinit { try? FileManager.default.removeItem(at: folder) }

        func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
        func key(_ role: String) throws -> String {
            try String(contentsOfFile: path("\(role).public"), encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines)
        }

        func startMaster(resume: Bool = false) throws {
            master = try bed.start(
                "master", on: "master",
                [
                    "master", "--mode", mode, "--host", bed.ip("master"), "--port", "5555", "--heartbeat-ms", "200",
                    "--model-dir", path("model"), "--curve-keys", path("master"), "--curve-allow-workers",
                    try key("worker"), "--curve-allow-servers", try key("server"), "--curve-allow-clients",
                    try key("gateway"),
                ] + (resume ? ["--resume"] : []))
        }

        func startWorker(_ index: Int) throws {
            try bed.start(
                "w\(index)", on: "w\(index)",
                [
                    "worker", "--master", "tcp://\(bed.ip("master")):5555", "--data",
                    MultiHostTestbedTests.data.appendingPathComponent("worker-\(sameShard ? 1 : index)").path, "--name",
                    "w\(index)",
                    "--curve-server-key", try key("master"), "--curve-keys", path("worker"), "--stage-bind",
                    bed.ip("w\(index)"),
                ])
        }

        /// An HTTP request from the machine itself (a host on the bed), with the token unless `token` is false.
        func send(_ method: String, _ path: String, _ body: String? = nil, token: Bool = true) throws -> (Int, String) {
            var request = URLRequest(url: URL(string: url + path)!)
            request.httpMethod = method
            request.httpBody = body.map { Data($0.utf8) }
            request.timeoutInterval = 60
            if token { request.setValue("Bearer \(self.token)", forHTTPHeaderField: "Authorization") }
            let done = DispatchSemaphore(value: 0)
            let box = Box()
            URLSession.shared.dataTask(with: request) { data, response, error in
                box.value = (
                    (response as? HTTPURLResponse)?.statusCode ?? -1,
                    data.map { String(decoding: $0, as: UTF8.self) } ?? "\(error.map { "\($0)" } ?? "")"
                )
                done.signal()
            }.resume()
            done.wait()
            return box.value
        }

        func cluster() throws -> ClusterView? {
            let (status, body) = try send("GET", "/v1/chimera/cluster")
            guard status == 200 else { return nil }
            return try? ViewCoding.decoder.decode(ClusterView.self, from: Data(body.utf8))
        }

        /// Polls the cluster until `condition` holds; false after `seconds`.
        func wait(_ seconds: Double, _ condition: (ClusterView) -> Bool) throws -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let view = try cluster(), condition(view) { return true }
                usleep(200_000)
            }
            return false
        }

        func job(_ id: Int) throws -> JobView? {
            let (status, body) = try send("GET", "/v1/chimera/jobs/\(id)")
            guard status == 200 else { return nil }
            return try? ViewCoding.decoder.decode(JobView.self, from: Data(body.utf8))
        }
    }

    final class Box: @unchecked Sendable {
        var value: (Int, String) = (-1, "")
    }

    static func started(_ body: String) throws -> Int {
        let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        return try #require(object?["job_id"] as? Int)
    }

    @Test(
        "a parameter-server fit across five hosts with CURVE and a token; a worker cut off mid-fit is declared dead and rejoins when its link returns; the master's host killed mid-fit resumes from its checkpoint"
    )
    func parameterServer() async throws {
        try await blocking {
            let cluster = try Cluster()
            #expect(try cluster.wait(60) { $0.readyWorkers == 3 }, "the workers did not join across the bed")
            let hosts = try cluster.cluster()?.workers.map(\.name).sorted()
            #expect(hosts == ["w1", "w2", "w3"])
            #expect(try cluster.send("POST", "/v1/chimera/parameter-server/fit", token: false).0 == 401)
            let (fitStatus, fitBody) = try cluster.send(
                "POST", "/v1/chimera/parameter-server/fit", #"{"iterations": 100, "eta0": 0.5}"#)
            #expect(fitStatus == 200 && fitBody == #"{"fit":"ok"}"#, "\(fitBody)")

            // A partition: w2's link goes down during a long fit, then comes back.
            let (startStatus, startBody) = try cluster.send("POST", "/v1/chimera/jobs", #"{"iterations": 10000000}"#)
            #expect(startStatus == 202, "\(startBody)")
            let job = try Self.started(startBody)
            #expect(try cluster.wait(30) { $0.iteration > 20 })
            try cluster.bed.link("w2", up: false)
            #expect(
                try cluster.wait(30) { view in view.workers.contains { $0.name == "w2" && !$0.alive } },
                "w2 was not declared dead")
            let during = try cluster.cluster()?.iteration ?? 0
            #expect(try cluster.wait(30) { $0.iteration > during + 20 }, "the fit stopped without w2")
            try cluster.bed.link("w2", up: true)
            #expect(
                try cluster.wait(60) { view in view.workers.contains { $0.name == "w2" && $0.alive } },
                "w2 did not rejoin")
            #expect(try cluster.job(job)?.state == "running")
            let (cancelStatus, _) = try cluster.send("POST", "/v1/chimera/jobs/\(job)/cancel")
            #expect(cancelStatus == 200)

            // The master's host dies mid-fit and comes back with --resume.
            let (resumableStatus, resumableBody) = try cluster.send(
                "POST", "/v1/chimera/jobs", #"{"iterations": 4000, "checkpoint_every": 10}"#)
            #expect(resumableStatus == 202, "\(resumableBody)")
            let resumable = try Self.started(resumableBody)
            #expect(try cluster.wait(30) { $0.jobID == resumable && $0.iteration >= 30 })
            cluster.master?.send(signal: SIGKILL)
            cluster.master?.wait(timeoutSeconds: 10)
            try cluster.startMaster(resume: true)
            #expect(
                try cluster.wait(120) { $0.jobID == resumable && $0.jobState == "succeeded" },
                "the resumed job did not finish: \(String(describing: try? cluster.cluster()))")
            #expect(try cluster.job(resumable)?.iteration == 4000)
        }
    }

    @Test(
        "sharded across hosts: two parameter-server hosts with their own CURVE keys hold the weights, the same model as the master alone"
    )
    func shardedServers() async throws {
        try await blocking {
            let cluster = try Cluster(servers: 2)
            #expect(
                try cluster.wait(60) { $0.readyWorkers == 3 && $0.servers?.count == 2 },
                "the workers and servers did not join across the bed")
            var weights: [[Float]] = []
            for servers in [0, 2] {
                let (status, body) = try cluster.send(
                    "POST", "/v1/chimera/jobs", #"{"iterations": 40, "eta0": 0.5, "servers": \#(servers)}"#)
                #expect(status == 202, "\(body)")
                let job = try Self.started(body)
                #expect(try cluster.wait(60) { $0.jobID == job && $0.jobState == "succeeded" }, "S = \(servers)")
                if servers == 2 {
                    let view = try cluster.cluster()
                    #expect(view?.servers?.map(\.host).count == 2)
                }
                weights.append(
                    try FittedModel.load(from: URL(fileURLWithPath: cluster.path("model/model.json"))).weights)
            }
            let difference = zip(weights[0], weights[1]).map { abs($0 - $1) }.max() ?? 1
            #expect(weights[0].count == weights[1].count && difference <= 1e-5, "weights differ by \(difference)")
        }
    }

    @Test(
        "a pipeline across three worker hosts: each host one stage of the network, stage links encrypted with CURVE"
    )
    func pipeline() async throws {
        try await blocking {
            let cluster = try Cluster(sameShard: true)
            #expect(try cluster.wait(60) { $0.readyWorkers == 3 })
            let (status, body) = try cluster.send(
                "POST", "/v1/chimera/jobs",
                #"{"model": "mlp", "hidden": "16,8", "parallelism": "pipeline", "stages": 3, "iterations": 60, "batch_size": 64, "eta0": 0.05, "optimizer": "adam"}"#
            )
            #expect(status == 202, "\(body)")
            let job = try Self.started(body)
            #expect(
                try cluster.wait(120) { $0.jobID == job && $0.jobState != "running" },
                "the pipeline did not finish: \(String(describing: try? cluster.cluster()))")
            let view = try cluster.job(job)
            #expect(view?.state == "succeeded", "\(String(describing: view))")
            #expect(view?.iteration == 60)
        }
    }

    @Test("bagging across the hosts: each worker host fits its trees, the master host answers predictions")
    func bagging() async throws {
        try await blocking {
            let cluster = try Cluster(mode: "aggregation")
            #expect(try cluster.wait(60) { $0.readyWorkers == 3 })
            let (fitStatus, fitBody) = try cluster.send(
                "POST", "/v1/chimera/aggregation/fit", #"{"trees_per_worker": 3}"#)
            #expect(fitStatus == 200, "\(fitBody)")
            let (columns, rows) = try ShardLayout.loadFeatures(
                Self.data.appendingPathComponent("test/X_test.csv").path)
            let body = try JSONSerialization.data(withJSONObject: [
                "X_pred_columns": columns, "X_pred_rows": rows.prefix(20).map { $0.map(Double.init) },
            ])
            let (predictStatus, predictBody) = try cluster.send(
                "POST", "/v1/chimera/aggregation/predict", String(decoding: body, as: UTF8.self))
            #expect(predictStatus == 200 && predictBody.hasPrefix(#"{"y_pred_rows":["#), "\(predictBody)")
        }
    }
}
