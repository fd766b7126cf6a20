import ChimeraCluster
import ChimeraTestSupport
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite("chimera local, end to end")
struct LocalClusterCommandTests {
    /// A blocking HTTP POST with curl-like simplicity (URLSession, on a dedicated thread).
    static func post(_ url: String, _ body: Data?) throws -> (Int, String) { try send("POST", url, body) }

    /// A blocking HTTP GET.
    static func get(_ url: String) throws -> (Int, String) { try send("GET", url, nil) }

    static func send(_ method: String, _ url: String, _ body: Data?) throws -> (Int, String) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.httpBody = body
        request.timeoutInterval = 120
        let done = DispatchSemaphore(value: 0)
        let result = LockedResult()
        URLSession.shared.dataTask(with: request) { data, response, error in
            result.set(
                (response as? HTTPURLResponse)?.statusCode ?? -1,
                data.map { String(decoding: $0, as: UTF8.self) } ?? "\(error!)")
            done.signal()
        }.resume()
        done.wait()
        return result.value
    }

    @Test("one command starts master, workers and gateway; HTTP fit and predict work; SIGKILL leaves no orphans")
    func localCluster() async throws {
        try await blocking {
            let data = repositoryRoot.appendingPathComponent("deploy/data/breast-cancer")
            let local = try ChildProcess(
                name: "local", arguments: ["local", "--data", data.path, "--workers", "3", "--port", "0"],
                prefix: "[local]",
                captureOutput: true, executable: try chimeraExecutable())
            defer {
                local.send(signal: SIGKILL)
                local.wait(timeoutSeconds: 5)
            }
            var lines: [String] = []
            while !(lines.last?.hasPrefix("chimera-local ") ?? false) {
                guard let line = local.nextLine(timeoutSeconds: 120) else { break }
                lines.append(line)
            }
            let summary = try #require(lines.last)
            let url = try #require(summary.split(separator: " ").first { $0.hasPrefix("url=") }?.dropFirst(4))
            let pids =
                lines.first { $0.hasPrefix("chimera local: pids") }?.split(separator: " ").compactMap { part in
                    part.split(separator: "=").last.flatMap { Int32($0) }
                } ?? []
            #expect(pids.count == 5, "master, 3 workers, gateway: \(lines)")

            // Workers may still be finishing the broadcast handshake: retry while the master says so.
            var (status, body) = try Self.post("\(url)/v1/chimera/parameter-server/fit", nil)
            for _ in 0..<100 where status == 503 {
                usleep(100_000)
                (status, body) = try Self.post("\(url)/v1/chimera/parameter-server/fit", nil)
            }
            #expect(status == 200 && body == "{\"fit\":\"ok\"}", "\(status) \(body)")
            let (columns, rows) = try ShardLayout.loadFeatures(data.appendingPathComponent("test/X_test.csv").path)
            let request = try JSONSerialization.data(withJSONObject: [
                "X_pred_columns": columns, "X_pred_rows": rows.prefix(5).map { $0.map(Double.init) },
            ])
            let (predictStatus, predictBody) = try Self.post("\(url)/v1/chimera/parameter-server/predict", request)
            #expect(predictStatus == 200 && predictBody.hasPrefix("{\"y_pred_rows\":["), "\(predictBody)")

            local.send(signal: SIGKILL)
            local.wait(timeoutSeconds: 10)
            #expect(waitUntilGone(pids), "children outlived chimera local: \(pids)")
        }
    }
}

extension LocalClusterCommandTests {
    /// Starts `chimera local` and returns it with the gateway's URL.
    static func startLocal(_ arguments: [String]) throws -> (ChildProcess, String) {
        let local = try ChildProcess(
            name: "local", arguments: ["local", "--port", "0"] + arguments, prefix: "[local]", captureOutput: true,
            executable: try chimeraExecutable())
        while let line = local.nextLine(timeoutSeconds: 120) {
            if line.hasPrefix("chimera-local "),
                let url = line.split(separator: " ").first(where: { $0.hasPrefix("url=") })
            {
                return (local, String(url.dropFirst(4)))
            }
        }
        local.send(signal: SIGKILL)
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "chimera local printed no URL"])
    }

    @Test(
        "the quickstart's client: chimera http fit follows a job to the end, chimera http predict prints accuracy (gateway process, or embedded in the master)",
        arguments: [
            ("parameter-server", false), ("aggregation", false), ("parameter-server", true), ("aggregation", true),
        ])
    func httpClientCommands(mode: String, embedded: Bool) async throws {
        try await blocking {
            let data = repositoryRoot.appendingPathComponent("deploy/data/breast-cancer")
            let (local, url) = try Self.startLocal(
                ["--mode", mode, "--data", data.path] + (embedded ? ["--embedded-gateway"] : []))
            defer { ChildProcess.stopAll([local]) }
            let fitArguments =
                mode == "aggregation" ? ["--trees-per-worker", "4"] : ["--iterations", "150", "--eta0", "0.5"]
            let fit = try runChimera(
                ["http", "fit", "--gateway", url, "--wait-workers", "4", "--poll", "0.01"] + fitArguments)
            #expect(fit.status == 0, "\(fit.stderr)")
            #expect(fit.stdout.contains("succeeded"), "\(fit.stdout)")
            if mode == "aggregation" {
                #expect(fit.stdout.contains("16 trees"), "\(fit.stdout)")
            } else {
                #expect(fit.stdout.contains("150 iterations"), "\(fit.stdout)")
            }
            let predict = try runChimera([
                "http", "predict", "--gateway", url, "--x", data.appendingPathComponent("test/X_test.csv").path, "--y",
                data.appendingPathComponent("test/y_test.csv").path,
            ])
            #expect(predict.status == 0, "\(predict.stderr)")
            let accuracy = predict.stdout.split(separator: " ").dropFirst().first.flatMap { Double($0) }
            #expect((accuracy ?? 0) >= 0.9, "\(predict.stdout)")
            // Without a reachable gateway the client says so and fails.
            let refused = try runChimera(["http", "fit", "--gateway", "http://127.0.0.1:1"])
            #expect(refused.status != 0)
        }
    }

    @Test("64 workers from one command: all ready, a BSP fit over HTTP succeeds, status prints a summary")
    func sixtyFourWorkers() async throws {
        try await blocking {
            let local = try ChildProcess(
                name: "local", arguments: ["local", "--port", "0", "--synth", "12800,8,2", "--workers", "64"],
                prefix: "[local]", captureOutput: true, executable: try chimeraExecutable())
            defer { ChildProcess.stopAll([local]) }
            var announcement: String?
            while let line = local.nextLine(timeoutSeconds: 120) {
                if line.hasPrefix("chimera-local ") {
                    announcement = line
                    break
                }
            }
            let fields = Dictionary(
                uniqueKeysWithValues: try #require(announcement).split(separator: " ").dropFirst().compactMap {
                    field -> (String, String)? in
                    let parts = field.split(separator: "=", maxSplits: 1)
                    return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
                })
            let url = try #require(fields["url"])
            let endpoint = try #require(fields["control"])
            let fit = try runChimera(
                ["http", "fit", "--gateway", url, "--wait-workers", "64", "--poll", "0.05", "--iterations", "30"])
            #expect(fit.status == 0, "\(fit.stderr)")
            #expect(fit.stdout.contains("succeeded, 30 iterations"), "\(fit.stdout)")
            let (status, body) = try Self.get("\(url)/v1/chimera/cluster")
            let cluster = try ViewCoding.decoder.decode(ClusterView.self, from: Data(body.utf8))
            #expect(status == 200 && cluster.readyWorkers == 64 && cluster.iteration == 30)
            #expect(Set(cluster.workers.map(\.rows)) == [200])
            let summary = try runChimera(["status", "--master", endpoint])
            #expect(summary.stdout.contains("64 workers: 64 alive, 0 dead"), "\(summary.stdout)")
            #expect(summary.stdout.contains("clocks (alive): all "), "\(summary.stdout)")
            #expect(summary.stdout.split(separator: "\n").count < 8)
        }
    }
}

private final class LockedResult: @unchecked Sendable {
    // Written once by URLSession's callback before the semaphore is signalled, read after the wait.
    private let lock = NSLock()
    private var stored: (Int, String) = (-1, "")
    func set(_ status: Int, _ body: String) { lock.withLock { stored = (status, body) } }
    var value: (Int, String) { lock.withLock { stored } }
}
