public import ChimeraCluster
public import ChimeraWire
public import Foundation

/// A real master and real worker processes of the built `chimera` binary, on 127.0.0.1 with OS-chosen
/// ports, for end-to-end tests. Everything is killed when the cluster is released.
public final class LocalCluster {
    public private(set) var master: ChildProcess
    public let workersEndpoint: String
    public private(set) var controlEndpoint: String
    private let heartbeatMilliseconds: Int
    public private(set) var workers: [String: ChildProcess] = [:]
    public let modelDirectory: URL
    /// CURVE keys for the test's own client (when the master requires CURVE).
    public var clientCurve: CurveClientSettings?

    /// Starts a master; `heartbeatMilliseconds` small keeps death detection quick in tests.
    public init(heartbeatMilliseconds: Int = 200, extraArguments: [String] = []) throws {
        modelDirectory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "chimera-e2e-\(UUID().uuidString.prefix(8))")
        self.heartbeatMilliseconds = heartbeatMilliseconds
        (master, workersEndpoint, controlEndpoint) = try Self.startMaster(
            port: Self.freeBasePort(), heartbeatMilliseconds: heartbeatMilliseconds, modelDirectory: modelDirectory,
            extraArguments: extraArguments)
    }

    private static func startMaster(
        port: Int, heartbeatMilliseconds: Int, modelDirectory: URL, extraArguments: [String]
    ) throws
        -> (ChildProcess, String, String)
    {
        let master = try ChildProcess(
            name: "master",
            arguments: [
                "master", "--port", "\(port)", "--heartbeat-ms", "\(heartbeatMilliseconds)", "--model-dir",
                modelDirectory.path,
            ]
                + extraArguments,
            prefix: "[master]", captureOutput: true, executable: try chimeraExecutable())
        guard let line = master.nextLine(timeoutSeconds: 60), let endpoints = MasterAnnouncement(line: line) else {
            master.send(signal: SIGKILL)
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "the master printed no endpoints"])
        }
        return (master, endpoints.workers, endpoints.control)
    }

    /// Three free consecutive ports below the kernel's ephemeral range (32768 up): the master takes
    /// N, N + 1 and N + 2, and a restarted master needs them again — OS-chosen ports of other
    /// processes (workers' stage sockets, servers) could take N + 1 or N + 2 in between.
    static func freeBasePort() -> Int {
        for _ in 0..<500 {
            let base = Int.random(in: 20_000..<32_000)
            if (0..<3).allSatisfy({ tcpPortIsFree(host: "127.0.0.1", port: base + $0) }) { return base }
        }
        return 0
    }

    /// SIGKILLs the master and starts a new one on the same workers port (its broadcast and control
    /// ports are the next two), with the same model folder. The workers are left as they are.
    public func restartMaster(extraArguments: [String] = []) throws {
        master.send(signal: SIGKILL)
        master.wait(timeoutSeconds: 10)
        guard let port = workersEndpoint.split(separator: ":").last.flatMap({ Int($0) }) else {
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "no port in \(workersEndpoint)"])
        }
        let (fresh, workers, control) = try Self.startMaster(
            port: port, heartbeatMilliseconds: heartbeatMilliseconds, modelDirectory: modelDirectory,
            extraArguments: extraArguments)
        master = fresh
        controlEndpoint = control
        precondition(workers == workersEndpoint, "the restarted master bound \(workers), not \(workersEndpoint)")
    }

    deinit {
        for worker in workers.values { worker.send(signal: SIGKILL) }
        master.send(signal: SIGKILL)
        for worker in workers.values { worker.wait(timeoutSeconds: 5) }
        master.wait(timeoutSeconds: 5)
        try? FileManager.default.removeItem(at: modelDirectory)
    }

    /// Starts (or restarts) a worker process named `name` on the shard in `folder`.
    @discardableResult
    public func startWorker(name: String, data folder: URL, delayMilliseconds: Int = 0, extraArguments: [String] = [])
        throws
        -> ChildProcess
    {
        let worker = try ChildProcess(
            name: name,
            arguments: [
                "worker", "--master", workersEndpoint, "--data", folder.path, "--name", name, "--delay-ms",
                "\(delayMilliseconds)",
            ] + extraArguments,
            prefix: "[\(name)]", executable: try chimeraExecutable())
        workers[name] = worker
        return worker
    }

    /// Takes a worker process started another way (e.g. a worker in another language) into the cluster's
    /// care: it is killed with the others.
    public func adopt(_ worker: ChildProcess, name: String) { workers[name] = worker }

    public func client() throws -> MasterClient { try MasterClient(endpoint: controlEndpoint, curve: clientCurve) }

    /// Polls the master until `condition` holds on its status, or `timeoutSeconds` pass.
    @discardableResult
    public func waitFor(
        timeoutSeconds: Double = 60, _ what: String, _ condition: (Chimera_V1_ClusterStatus) -> Bool
    ) throws -> Chimera_V1_ClusterStatus {
        let client = try client()
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while true {
            let status = try client.status()
            if condition(status) { return status }
            if Date() > deadline {
                throw CocoaError(
                    .fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "timed out waiting for \(what): \(status)"])
            }
            usleep(50_000)
        }
    }
}

/// The repository root (for committed data), from this file's location.
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
