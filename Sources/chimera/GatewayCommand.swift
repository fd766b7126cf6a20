import ArgumentParser
import ChimeraCluster
import ChimeraGateway
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Serve the Python Chimera's HTTP API (fit, predict) in front of a master, over ZeroMQ.")

    @Option(help: "The master's control endpoint.") var master = "tcp://127.0.0.1:5557"
    @Option(help: "Interface to listen on. Keep 127.0.0.1 unless clients are elsewhere.") var host = "127.0.0.1"
    @Option(help: "HTTP port (0: OS-chosen).") var port = 8080
    @Option(help: "Concurrent requests to the master.") var bridgeSize = 4
    @Option(help: "Largest request body in MiB.") var maxBodyMib = 64
    @Option(help: "Seconds a fit may take before 504.") var fitTimeout = 3600.0
    @Option(help: "Seconds any other request may take before 504.") var requestTimeout = 30.0
    @Option(help: "Exit when this pid dies (set by chimera local).") var parent: Int32?
    @Option(help: "File holding a bearer token every request but /healthz must carry (or env CHIMERA_GATEWAY_TOKEN).")
    var tokenFile: String?
    @Flag(help: "Allow listening beyond loopback without a token.") var insecure = false
    @Option(help: "Serve every route under this path (behind a reverse proxy), e.g. /chimera.") var basePath = ""
    @Option(help: "A folder of finished `chimera sweep` outputs the dashboard lists.") var sweepsDir: String?
    @OptionGroup var curve: CurveClientOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        logging.bootstrap()
        if let parent { ChildProcess.dieWithParent(originalParent: parent) }
        let options = try gatewayOptions(
            master: master, host: host, port: port, bridgeSize: bridgeSize, maxBodyMib: maxBodyMib,
            fitTimeout: fitTimeout,
            requestTimeout: requestTimeout, tokenFile: tokenFile, insecure: insecure, basePath: basePath,
            sweepsDir: sweepsDir)
        let bridge = try MasterBridge(endpoint: master, size: bridgeSize, curve: try curve.settings())
        try await serveGateway(options, bridge: bridge, logger: Logger(label: "chimera.gateway"))
    }
}

/// The gateway's settings from its command-line options (shared by `chimera gateway` and the gateway
/// a master embeds with `--http-port`).
/// `flagPrefix` names the flags in errors: "" for `chimera gateway`, "http-" for the embedded one.
func gatewayOptions(
    master: String, host: String, port: Int, bridgeSize: Int, maxBodyMib: Int, fitTimeout: Double,
    requestTimeout: Double,
    tokenFile: String?, insecure: Bool, basePath: String = "", sweepsDir: String? = nil, flagPrefix: String = ""
) throws -> GatewayOptions {
    var options = GatewayOptions()
    options.master = master
    options.host = host
    options.port = port
    options.bridgeSize = bridgeSize
    options.maxBodyBytes = maxBodyMib << 20
    options.fitTimeoutSeconds = fitTimeout
    options.requestTimeoutSeconds = requestTimeout
    do {
        options.basePath = try GatewayOptions.normalizedBasePath(basePath)
    } catch {
        throw CommandError("--\(flagPrefix)\(error)")
    }
    if let sweepsDir {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: sweepsDir, isDirectory: &isFolder), isFolder.boolValue else {
            throw CommandError("--\(flagPrefix)sweeps-dir \(sweepsDir) is not a folder")
        }
        options.sweepsDirectory = URL(fileURLWithPath: sweepsDir)
    }
    if let tokenFile {
        guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
            throw CommandError("cannot read --\(flagPrefix)token-file \(tokenFile)")
        }
        options.bearerToken = text.trimmingCharacters(in: .whitespacesAndNewlines)
    } else if let token = ProcessInfo.processInfo.environment["CHIMERA_GATEWAY_TOKEN"] {
        // Set but empty is a mistake (an unset variable in a script), not "no token".
        guard !token.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw CommandError("CHIMERA_GATEWAY_TOKEN is set but empty: give a token, or unset it to run without one")
        }
        options.bearerToken = token
    }
    if options.bearerToken?.isEmpty ?? false { throw CommandError("the bearer token is empty") }
    if !isLoopback(host) && options.bearerToken == nil && !insecure {
        throw CommandError(
            "listening on \(host) needs a bearer token (--\(flagPrefix)token-file or CHIMERA_GATEWAY_TOKEN), or --\(flagPrefix)insecure"
        )
    }
    return options
}

/// Serves the gateway, and `alongside` services (an embedded master's loop), until SIGINT/SIGTERM or
/// until one of them ends; then stops the bridge. `flag` names the port option in errors.
func serveGateway(
    _ options: GatewayOptions, bridge: MasterBridge, flag: String = "--port", alongside: [any Service] = [],
    logger: Logger
) async throws {
    let host = options.host
    let app = buildGateway(options, bridge: bridge) { port in
        // One machine-readable line on stdout, like the master's.
        print("chimera-gateway url=http://\(host):\(port)\(options.basePath)")
        fflush(nil)
    }
    defer { bridge.shutdown() }
    do {
        try await runServices([app] + alongside, logger: logger)
    } catch  where isAddressInUse(error) {
        throw CommandError(
            "port \(options.port) on \(host) is already in use (another gateway, or chimera local?): choose another "
                + "\(flag) (\(flag) 0: any free port)")
    }
}
