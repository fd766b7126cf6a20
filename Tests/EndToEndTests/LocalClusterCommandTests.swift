import ChimeraCluster
import ChimeraTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

@Suite("chimera local, end to end")
struct LocalClusterCommandTests {
    /// A blocking HTTP POST with curl-like simplicity (URLSession, on a dedicated thread).
    static func post(_ url: String, _ body: Data?) throws -> (Int, String) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.httpBody = body
        request.timeoutInterval = 120
        let done = DispatchSemaphore(value: 0)
        let result = LockedResult()
        URLSession.shared.dataTask(with: request) { data, response, error in
            result.set((response as? HTTPURLResponse)?.statusCode ?? -1, data.map { String(decoding: $0, as: UTF8.self) } ?? "\(error!)")
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
                name: "local", arguments: ["local", "--data", data.path, "--workers", "3", "--port", "0"], prefix: "[local]",
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
            let pids = lines.first { $0.hasPrefix("chimera local: pids") }?.split(separator: " ").compactMap { part in
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

private final class LockedResult: @unchecked Sendable {
    // Written once by URLSession's callback before the semaphore is signalled, read after the wait.
    private let lock = NSLock()
    private var stored: (Int, String) = (-1, "")
    func set(_ status: Int, _ body: String) { lock.withLock { stored = (status, body) } }
    var value: (Int, String) { lock.withLock { stored } }
}
