import ChimeraCluster
import ChimeraWire
import Foundation

/// Our cluster as benchmarks run it: a master, one worker per shard and optionally a gateway process
/// and/or a gateway embedded in the master, each a process of this executable on 127.0.0.1; everything
/// is stopped when released.
final class SwiftChimeraCluster {
    let client: MasterClient
    let controlEndpoint: String
    /// The gateway process's URL.
    private(set) var gatewayURL: String?
    /// The URL of the gateway embedded in the master (`chimera master --http-port`).
    private(set) var embeddedGatewayURL: String?
    private var processes: [ChildProcess] = []

    /// `threads`: each worker's compute threads (nil: this machine's cores ÷ workers, as `chimera local`).
    init(
        mode: MasterMode, shards: [URL], gatewayProcess: Bool = false, embeddedGateway: Bool = false,
        threads: Int? = nil
    ) throws {
        let master = try ChildProcess(
            name: "master",
            arguments: ["master", "--mode", mode.rawValue, "--port", "0"]
                + (embeddedGateway ? ["--http-port", "0"] : []),
            captureOutput: true)
        processes.append(master)
        guard let line = master.nextLine(timeoutSeconds: 30), let endpoints = MasterAnnouncement(line: line) else {
            throw BenchmarkError("the master did not start")
        }
        if embeddedGateway { embeddedGatewayURL = try Self.url(announcedBy: master) }
        controlEndpoint = endpoints.control
        client = try MasterClient(endpoint: endpoints.control)
        // As `chimera local` does: the workers split this machine's cores for their gradient passes.
        let threads = threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / shards.count)
        for (index, shard) in shards.enumerated() {
            processes.append(
                try ChildProcess(
                    name: "w\(index + 1)",
                    arguments: [
                        "worker", "--master", endpoints.workers, "--data", shard.path, "--name", "w\(index + 1)",
                        "--threads", "\(threads)",
                    ],
                    captureOutput: true))
        }
        if gatewayProcess {
            let process = try ChildProcess(
                name: "gateway", arguments: ["gateway", "--master", endpoints.control, "--port", "0"],
                captureOutput: true)
            processes.append(process)
            gatewayURL = try Self.url(announcedBy: process)
        }
        try waitForWorkers(shards.count)
    }

    /// Waits until `count` workers are ready (after a start, or after being frozen long enough to be
    /// declared dead and re-register).
    func waitForWorkers(_ count: Int) throws {
        let deadline = Date().addingTimeInterval(120)
        while try client.status().workers.filter({ $0.ready && $0.alive }).count < count {
            guard Date() < deadline else { throw BenchmarkError("workers did not register") }
            usleep(20_000)
        }
    }

    deinit { ChildProcess.stopAll(processes) }

    /// The URL in a gateway's `chimera-gateway url=…` line.
    private static func url(announcedBy process: ChildProcess) throws -> String {
        guard let line = process.nextLine(timeoutSeconds: 60), line.hasPrefix("chimera-gateway url="),
            let url = line.split(separator: "=", maxSplits: 1).last
        else { throw BenchmarkError("the gateway did not start") }
        return String(url)
    }

    /// Its processes, for freezing them while another server is measured.
    var processIDs: [Int32] { processes.map(\.processIdentifier) }
}

/// Rows of a held-out split as JSON for the predict endpoints, and its labels.
struct HeldOut {
    let columns: [String]
    let rows: [[Float]]
    let labels: [Float]

    init(_ folder: URL) throws {
        (columns, rows) = try ShardLayout.loadFeatures(folder.appendingPathComponent("X_test.csv").path)
        labels = try ShardLayout.loadLabels(folder.appendingPathComponent("y_test.csv").path)
    }

    /// The body a Python client sends: each value as the short decimal the CSV holds (not the float32's
    /// 17-digit double expansion).
    func json(rows count: Int) throws -> [UInt8] {
        let values = rows.prefix(count).map { $0.map { Double("\($0)") ?? Double($0) } }
        let object: [String: Any] = ["X_pred_columns": columns, "X_pred_rows": values]
        return Array(try JSONSerialization.data(withJSONObject: object))
    }
}
