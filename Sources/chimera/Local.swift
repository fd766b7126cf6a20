import ArgumentParser
import ChimeraCluster
import ChimeraGateway
import ChimeraML
import Dispatch
import Foundation
import Logging

struct Local: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a master, N workers and a gateway on 127.0.0.1 as child processes; stop them all on Ctrl-C.",
        discussion: "Prints the gateway's URL and streams every process's log with a prefix. If this process is "
            + "killed, the children exit too. A `chimera worker --master <workers endpoint>` started by hand later "
            + "joins the running cluster.")

    @Option(help: "parameter-server (distributed SGD) or aggregation (bagged decision trees).") var mode =
        "parameter-server"
    @Option(help: "Workers to start (default: one per worker-* folder of --data, or 4).") var workers: Int?
    @Option(
        help:
            "Data in the Chimera layout: one sub-folder per worker; or one shard folder (X_train.csv, y_train.csv) that every worker reads (pipeline stages)."
    ) var data: String?
    @Option(help: "Synthetic data instead: rows,features,classes (e.g. 20000,20,2).") var synth: String?
    @Option(help: "Gateway port (0: OS-chosen).") var port = 8080
    @Option(help: "Master workers port; broadcast and control follow it (0: OS-chosen).") var masterPort = 0
    @Flag(
        help:
            "Serve HTTP from the master's process (`chimera master --http-port`) instead of a gateway process: fewer hand-overs per request."
    )
    var embeddedGateway = false
    @Option(help: "A folder of finished `chimera sweep` outputs the dashboard lists.") var sweepsDir: String?
    @Option(help: "Parameter servers to start (the master's children): fits hold their weights on them.") var servers =
        0
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard MasterMode(rawValue: mode) != nil else {
            throw ValidationError("--mode must be parameter-server or aggregation")
        }
        if data != nil && synth != nil { throw ValidationError("give --data or --synth, not both") }
        if let workers, workers < 1 { throw ValidationError("--workers must be ≥ 1") }
        guard (0...256).contains(servers) else { throw ValidationError("--servers must be 0…256") }
    }

    func run() async throws {
        logging.bootstrap()
        let logger = Logger(label: "chimera.local")
        let stop = StopFlag()
        let command = self
        try await runServices(
            [
                BlockingLoopService(name: "chimera-local", stopFlag: stop) {
                    try command.serve(stop: stop, logger: logger)
                }
            ], logger: logger)
    }

    /// Starts the cluster and watches it until `stop` (SIGINT, SIGTERM) or until the master or gateway exits.
    private func serve(stop: StopFlag, logger: Logger) throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("chimera-local-\(getpid())")
        defer { try? FileManager.default.removeItem(at: scratch) }
        // Two clusters on the default port collide: say so before starting anything.
        guard tcpPortIsFree(host: "127.0.0.1", port: port) else {
            throw CommandError(
                "port \(port) is already in use (another chimera local or gateway?): choose another --port, or --port 0 for any free port"
            )
        }
        for offset in 0..<3 where masterPort > 0 && !tcpPortIsFree(host: "127.0.0.1", port: masterPort + offset) {
            throw CommandError(
                "port \(masterPort + offset) is already in use: the master takes --master-port N, N+1 and N+2; choose another, or 0 for free ports"
            )
        }
        let shards = try shardFolders(scratch: scratch)
        let me = "\(getpid())"
        var children: [ChildProcess] = []
        defer { ChildProcess.stopAll(children) }

        let master = try ChildProcess(
            name: "master",
            arguments: [
                "master", "--mode", mode, "--port", "\(masterPort)", "--model-dir",
                scratch.appendingPathComponent("model").path, "--parent", me,
            ] + (servers > 0 ? ["--servers", "\(servers)"] : []) + logging.arguments
                + (embeddedGateway
                    ? ["--http-port", "\(port)"] + (sweepsDir.map { ["--http-sweeps-dir", $0] } ?? []) : []),
            prefix: "[master]", captureOutput: true)
        children.append(master)
        guard let line = master.nextLine(timeoutSeconds: 60), let endpoints = MasterAnnouncement(line: line) else {
            throw CommandError("the master did not start")
        }
        let workersEndpoint = endpoints.workers
        // The workers share this machine's cores: each gets its share for its gradient passes.
        let threads = max(1, ProcessInfo.processInfo.activeProcessorCount / shards.count)
        for (index, shard) in shards.enumerated() {
            // Folder names, unless every worker reads the same folder.
            let name =
                shard.lastPathComponent.hasPrefix("worker-") && Set(shards).count == shards.count
                ? shard.lastPathComponent : "worker-\(index + 1)"
            children.append(
                try ChildProcess(
                    name: name,
                    arguments: [
                        "worker", "--master", workersEndpoint, "--data", shard.path, "--name", name, "--threads",
                        "\(threads)", "--parent", me,
                    ]
                        + logging.arguments,
                    prefix: "[\(name)]"))
        }
        // The gateway announces its URL on stdout: the embedded one right after the master's line.
        let gateway =
            embeddedGateway
            ? master
            : try ChildProcess(
                name: "gateway",
                arguments: ["gateway", "--master", endpoints.control, "--port", "\(port)", "--parent", me]
                    + (sweepsDir.map { ["--sweeps-dir", $0] } ?? []) + logging.arguments,
                prefix: "[gateway]", captureOutput: true)
        if !embeddedGateway { children.append(gateway) }
        if stop.isStopped { return logger.info("stopping") }
        guard let urlLine = gateway.nextLine(timeoutSeconds: 60), urlLine.hasPrefix("chimera-gateway url="),
            let url = urlLine.split(separator: "=", maxSplits: 1).last
        else {
            throw CommandError("the gateway did not start")
        }
        print("chimera local: gateway \(url), dashboard \(url)/")
        print(
            "chimera local: master workers endpoint \(workersEndpoint) (start more workers with chimera worker --master \(workersEndpoint) --data DIR)"
        )
        print("chimera local: pids " + children.map { "\($0.name)=\($0.processIdentifier)" }.joined(separator: " "))
        print("chimera-local url=\(url) workers=\(workersEndpoint) control=\(endpoints.control)")
        fflush(nil)

        while !stop.isStopped {
            if let dead = children.first(where: { !$0.isRunning && ($0.name == "master" || $0.name == "gateway") }) {
                logger.error("\(dead.name) exited; stopping everything")
                throw ExitCode(1)
            }
            usleep(100_000)
        }
        logger.info("stopping")
    }

    private func shardFolders(scratch: URL) throws -> [URL] {
        if let data {
            let root = URL(fileURLWithPath: data)
            // One shard folder (X_train.csv itself): every worker holds a copy, as pipeline stages need.
            if FileManager.default.fileExists(atPath: root.appendingPathComponent("X_train.csv").path) {
                return Array(repeating: root, count: workers ?? 4)
            }
            let folders = try ShardLayout.workerFolders(root)
            let count = workers ?? folders.count
            guard count <= folders.count else {
                throw CommandError("\(data) has \(folders.count) worker folders, --workers is \(count)")
            }
            return Array(folders.prefix(count))
        }
        let parts = (synth ?? "20000,20,2").split(separator: ",").compactMap { Int($0) }
        guard parts.count == 3, parts[0] > 0, parts[1] > 0, parts[2] >= 2 else {
            throw CommandError("--synth takes rows,features,classes")
        }
        var spec = SyntheticData.Specification()
        spec.rows = parts[0]
        spec.features = parts[1]
        spec.classes = parts[2]
        let count = workers ?? 4
        let folder = scratch.appendingPathComponent("data")
        try ShardLayout.write(
            shards: SyntheticData.partition(SyntheticData.generate(spec), parts: count), test: nil, to: folder)
        return (1...count).map { folder.appendingPathComponent("worker-\($0)") }
    }
}
