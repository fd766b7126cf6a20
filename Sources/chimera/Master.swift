import ArgumentParser
import ChimeraCluster
import ChimeraGateway
import ChimeraML
import Foundation
import Logging
import ZeroMQ

struct Master: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a master: workers connect to it, clients fit and predict through it.")

    @Option(help: "parameter-server (distributed SGD) or aggregation (bagged decision trees).") var mode =
        "parameter-server"
    @Option(help: "Interface to bind. Keep 127.0.0.1 unless workers are on other machines.") var host = "127.0.0.1"
    @Option(help: "Workers port; broadcast is port+1, control port+2. 0 picks free ports.") var port = 5555
    @Option(help: "Heartbeat interval the workers are told to use, in ms.") var heartbeatMs: UInt32 = 1_000
    @Option(help: "Missed heartbeats before a worker is declared dead.") var liveness: UInt32 = 3
    @Option(help: "Folder for model.json and checkpoint.json (ensemble.json in aggregation mode).") var modelDir:
        String?
    @Flag(
        help:
            "Load the last checkpoint/model from --model-dir: a job the previous master left mid-fit resumes from its checkpoint once its workers are back; otherwise the next fit starts from its weights."
    ) var resume = false
    @Option(
        help:
            "Wait for this many ready workers: an interrupted job resumes, and fits start (409 Busy before), only once they are ready, or after --resume-wait-s (default: the checkpoint's workers, by name)."
    ) var expectWorkers: Int?
    @Option(help: "Resuming: seconds to wait for the workers before going on with those that are back.")
    var resumeWaitS = 30.0
    @Option(help: "Permissions of the model files, in octal.") var modelMode = "600"
    @Option(help: "Live workers admitted; a hello beyond is refused.") var maxWorkers = 1_024
    @Option(help: "Messages one peer may send per second; more are dropped unanswered and counted.") var maxPeerRate =
        100_000
    @Option(help: "Largest accepted frame in MiB.") var maxFrameMib = 1024
    @Option(help: "Aggregation: how long a fan-out prediction waits for the workers, in ms.") var fanOutTimeoutMs =
        10_000
    @Option(help: "Exit when this pid dies (set by chimera local).") var parent: Int32?
    @Option(
        help:
            "Start this many parameter servers (server-0 …) on 127.0.0.1 as child processes: fits then hold their weights on them (fit option servers)."
    )
    var servers = 0
    @OptionGroup var curve: CurveServerOptions
    @Option(
        help:
            "Also serve the gateway's HTTP API from this process on this port (0: OS-chosen), bridged to the master over ZeroMQ inproc: no gateway process, fewer hand-overs per request."
    )
    var httpPort: Int?
    @Option(help: "Embedded gateway: interface to listen on.") var httpHost = "127.0.0.1"
    @Option(help: "Embedded gateway: file holding the bearer token (or env CHIMERA_GATEWAY_TOKEN).") var httpTokenFile:
        String?
    @Flag(help: "Embedded gateway: allow listening beyond loopback without a token.") var httpInsecure = false
    @Option(help: "Embedded gateway: largest request body in MiB.") var httpMaxBodyMib = 64
    @Option(help: "Embedded gateway: serve every route under this path (behind a reverse proxy).") var httpBasePath = ""
    @Option(help: "Embedded gateway: a folder of finished `chimera sweep` outputs the dashboard lists.")
    var httpSweepsDir: String?
    @OptionGroup var logging: LoggingOptions

    /// Where an embedded gateway reaches the master.
    static let inprocControl = "inproc://chimera-control"

    func validate() throws {
        guard MasterMode(rawValue: mode) != nil else {
            throw ValidationError("--mode must be parameter-server or aggregation")
        }
        guard (0...65533).contains(port) else { throw ValidationError("--port must be 0…65533") }
        guard heartbeatMs >= 50 else { throw ValidationError("--heartbeat-ms must be ≥ 50") }
        guard liveness >= 1 else { throw ValidationError("--liveness must be ≥ 1") }
        if resume && modelDir == nil { throw ValidationError("--resume needs --model-dir") }
        guard let mode = Int(modelMode, radix: 8), (0...0o777).contains(mode) else {
            throw ValidationError("--model-mode: octal permissions such as 600 or 640")
        }
        if (mode & 0o600) != 0o600 { throw ValidationError("--model-mode must let the owner read and write (6xx)") }
        if let expectWorkers, expectWorkers < 1 { throw ValidationError("--expect-workers must be ≥ 1") }
        guard maxWorkers >= 1, maxPeerRate >= 10 else {
            throw ValidationError("--max-workers must be ≥ 1 and --max-peer-rate ≥ 10")
        }
        guard resumeWaitS >= 0 else { throw ValidationError("--resume-wait-s must be ≥ 0") }
        guard (0...256).contains(servers) else { throw ValidationError("--servers must be 0…256") }
        if servers > 0 && self.mode != "parameter-server" {
            throw ValidationError("--servers needs --mode parameter-server")
        }
    }

    func run() async throws {
        logging.bootstrap()
        let logger = Logger(label: "chimera.master")
        if let parent { ChildProcess.dieWithParent(originalParent: parent) }
        var options = MasterOptions()
        options.mode = MasterMode(rawValue: mode)!
        options.fanOutTimeoutMilliseconds = max(fanOutTimeoutMs, 1)
        options.host = host
        options.port = port
        options.heartbeatIntervalMilliseconds = heartbeatMs
        options.heartbeatLiveness = liveness
        options.modelDirectory = modelDir.map { URL(fileURLWithPath: $0) }
        options.resume = resume
        options.expectWorkers = expectWorkers
        options.resumeWaitSeconds = resumeWaitS
        options.modelFileMode = Int(modelMode, radix: 8)!
        options.maxWorkers = maxWorkers
        options.maxPeerMessagesPerSecond = maxPeerRate
        options.maxFrameBytes = maxFrameMib << 20
        options.curve = try curve.settings()
        if !isLoopback(host) && options.curve == nil {
            logger.warning("listening on \(host) without CURVE: anyone who reaches it can join or fit")
        }
        var gateway: GatewayOptions?
        if let httpPort {
            gateway = try gatewayOptions(
                master: Self.inprocControl, host: httpHost, port: httpPort, bridgeSize: 4, maxBodyMib: httpMaxBodyMib,
                fitTimeout: 3600, requestTimeout: 30, tokenFile: httpTokenFile, insecure: httpInsecure,
                basePath: httpBasePath, sweepsDir: httpSweepsDir, flagPrefix: "http-")
            options.inprocControlEndpoint = Self.inprocControl
            // With CURVE the embedded clients present the master's own key.
            if let key = options.curve?.keyPair.publicKey { options.curve?.clientKeys.insert(key) }
        }
        // Servers started here connect with the master's own key pair: admitted as a server.
        if servers > 0, let key = options.curve?.keyPair.publicKey { options.curve?.serverKeys.insert(key) }
        let master: ChimeraMaster
        do {
            master = try ChimeraMaster(options: options, logger: logger)
        } catch let error as ZMQError where error.code == .addressInUse {
            throw CommandError(
                "\(error.detail) is already in use (another master, or chimera local?): the master takes --port N, N+1 and N+2; "
                    + "choose another --port, or --port 0 for free ports")
        }
        let e = master.endpoints
        // One machine-readable line on stdout: tools (chimera local, tests) read the chosen ports here.
        print(MasterAnnouncement(workers: e.workers, broadcast: e.broadcast, control: e.control).line)
        fflush(nil)
        logger.info(
            "\(options.mode.rawValue) listening: workers \(e.workers), broadcast \(e.broadcast), control \(e.control)")
        // Parameter servers on this machine, children of this process: with CURVE they present the
        // master's own key pair and admit the workers the master admits.
        var serverArguments: [[String]] = []
        for index in 0..<servers {
            var arguments = ["server", "--master", e.workers, "--name", "server-\(index)", "--parent", "\(getpid())"]
            if let curveSettings = options.curve, let prefix = curve.curveKeys {
                arguments += ["--curve-keys", prefix, "--curve-server-key", curveSettings.keyPair.publicKey]
                for key in curveSettings.allowedClientKeys.union(curveSettings.workerKeys).sorted() {
                    arguments += ["--curve-allow", key]
                }
            }
            serverArguments.append(arguments + logging.arguments)
        }
        // The master's loop on its own thread (the master is used there only; it is stopped through its
        // Sendable flag); with an embedded gateway, the gateway on the event loops. Either ending ends both.
        nonisolated(unsafe) let loop = master
        let service = BlockingLoopService(name: "chimera-master", stopFlag: master.stopFlag) { [serverArguments] in
            // Started from the loop's thread: a child's parent-death signal follows the thread that
            // spawned it, and this one lives as long as the master.
            let children = try serverArguments.enumerated().map { index, arguments in
                try ChildProcess(name: "server-\(index)", arguments: arguments, prefix: "[server-\(index)]")
            }
            defer { ChildProcess.stopAll(children) }
            try loop.run()
        }
        if let gateway {
            let curve = options.curve.map {
                CurveClientSettings(serverPublicKey: $0.keyPair.publicKey, keyPair: $0.keyPair)
            }
            let bridge = try MasterBridge(
                endpoint: Self.inprocControl, size: gateway.bridgeSize, curve: curve, context: master.context)
            try await serveGateway(gateway, bridge: bridge, flag: "--http-port", alongside: [service], logger: logger)
        } else {
            try await runServices([service], logger: logger)
        }
        logger.info("stopped")
    }
}

struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a worker on one data shard (a folder with X_train.csv and y_train.csv).")

    @Option(help: "The master's workers endpoint.") var master = "tcp://127.0.0.1:5555"
    @Option(help: "The shard's folder.") var data: String?
    @Option(help: "A folder of worker folders (worker-1, worker-2, …): take the first one no running worker holds.")
    var dataRoot: String?
    @Option(help: "Unique worker name (default: the folder's name).") var name: String?
    @Option(help: "Exit when this pid dies (set by chimera local).") var parent: Int32?
    @Option(help: "Simulated compute: extra milliseconds spent on every iteration (every tree in aggregation).")
    var delayMs = 0
    @Option(help: "Straggler: every iteration takes this many times as long.") var slowdown = 1.0
    @Option(help: "Straggler: probability of a transient pause per iteration.") var pauseProbability = 0.0
    @Option(help: "Straggler: pause every K iterations (0: never).") var pauseEvery = 0
    @Option(help: "Straggler: pause length in milliseconds.") var pauseMs = 0.0
    @Option(help: "Straggler: seed of the transient pauses.") var stragglerSeed: UInt64 = 1
    @Option(
        help:
            "Threads sharing each full-batch gradient pass and each network product through OpenBLAS (give a worker the cores it does not share)."
    )
    var threads = 1
    @Option(
        help:
            "Memory a job may need on this worker, MiB (default: what the machine and its cgroup have free); a larger model ends the job with an error naming both."
    )
    var maxMemoryMib: Int?
    @Option(
        help:
            "Where this worker's pipeline-stage socket listens (the OS picks the port); none: take no pipeline stage. Beyond loopback only with CURVE (--curve-keys): stage links are then encrypted."
    )
    var stageBind = "127.0.0.1"
    @Flag(
        help:
            "The shard is one block of a data set's columns (for parallelism features): the master admits it beside workers holding other columns. Folders made by chimera data split-columns say so themselves."
    )
    var columnBlock = false
    @OptionGroup var curve: CurveClientOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be ≥ 1") }
        guard ["none", "127.0.0.1", "localhost", "::1"].contains(stageBind) || curve.curveKeys != nil else {
            throw ValidationError(
                "--stage-bind \(stageBind): beyond loopback, pipeline stage links need CURVE (--curve-keys and --curve-server-key) so activations travel encrypted; use none to take no stage"
            )
        }
        guard (maxMemoryMib ?? 1) >= 1 else { throw ValidationError("--max-memory-mib must be ≥ 1") }
        guard (data == nil) != (dataRoot == nil) else {
            throw ValidationError("give exactly one of --data and --data-root")
        }
    }

    func run() async throws {
        logging.bootstrap()
        let logger = Logger(label: "chimera.worker")
        if let parent { ChildProcess.dieWithParent(originalParent: parent) }
        // Held until the process exits: the flock marks the shard as taken.
        let claim = try dataRoot.map { try ShardClaim.claim(root: URL(fileURLWithPath: $0)) }
        let folder = claim?.folder ?? URL(fileURLWithPath: data!)
        if let claim { logger.info("claimed \(claim.folder.path)") }
        let shard: Dataset
        do {
            shard = try ShardLayout.loadShard(folder)
        } catch {
            throw CommandError("cannot load the shard: \(error)")
        }
        var options = WorkerNode.Options(name: name ?? folder.standardizedFileURL.lastPathComponent)
        options.masterEndpoint = master
        options.curve = try curve.settings()
        options.delayPerIterationMilliseconds = max(0, delayMs)
        options.computeThreads = threads
        options.maxMemoryMiB = maxMemoryMib
        options.stageBind = stageBind == "none" ? nil : stageBind == "::1" ? "[::1]" : stageBind
        // `chimera data split-columns` leaves this mark in each block's folder.
        options.columnBlock =
            columnBlock
            || FileManager.default.fileExists(atPath: folder.appendingPathComponent(ShardLayout.columnBlockMark).path)
        guard slowdown >= 1, (0...1).contains(pauseProbability), pauseEvery >= 0, pauseMs >= 0 else {
            throw CommandError("straggler settings: --slowdown ≥ 1, --pause-probability in [0, 1], --pause-ms ≥ 0")
        }
        options.straggler.slowdown = slowdown
        options.straggler.pauseProbability = pauseProbability
        options.straggler.pauseEvery = pauseEvery
        options.straggler.pauseMilliseconds = pauseMs
        options.straggler.seed = stragglerSeed
        if options.straggler.isActive {
            logger.info("straggler injection: \(options.straggler)", metadata: ["worker": "\(options.name)"])
        }
        nonisolated(unsafe) let node = try WorkerNode(options: options, data: shard, logger: logger)
        try await runServices(
            [BlockingLoopService(name: "chimera-worker", stopFlag: node.stopFlag) { try node.run() }], logger: logger)
        withExtendedLifetime(claim) {}
    }
}
