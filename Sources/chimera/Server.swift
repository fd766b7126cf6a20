import ArgumentParser
import ChimeraCluster
import Foundation
import Logging
import ZeroMQ

struct Server: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a parameter server: it holds one range of a sharded fit's weights (fit option servers).",
        discussion:
            "It registers with the master, which gives each of a fit's servers a contiguous range of the parameters; workers push and pull each range straight to and from its server. README \"Sharded parameter servers\"."
    )

    @Option(help: "The master's workers endpoint.") var master = "tcp://127.0.0.1:5555"
    @Option(help: "Unique server name; a fit takes the first `servers` registered servers by name.") var name =
        "server-0"
    @Option(help: "Interface workers reach this server on. Keep 127.0.0.1 unless workers are on other machines.")
    var host = "127.0.0.1"
    @Option(help: "Port (0: chosen by the OS; the master tells the workers).") var port = 0
    @Option(help: "The host or address given to workers when --host is a wildcard such as 0.0.0.0.") var advertise:
        String?
    @Option(help: "Largest accepted frame in MiB.") var maxFrameMib = 1024
    @Option(help: "Exit when this pid dies (set by chimera master --servers and chimera local).") var parent: Int32?
    @OptionGroup var curve: CurveClientOptions
    @Option(
        help:
            "With CURVE: public keys of the workers this server admits (files, one key per line, or 40-character keys); repeatable."
    )
    var curveAllow: [String] = []
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        guard !name.isEmpty else { throw ValidationError("--name must not be empty") }
        if ["0.0.0.0", "*", "::"].contains(host) && advertise == nil {
            throw ValidationError("--host \(host) is not an address workers can connect to: give --advertise HOST")
        }
    }

    func run() async throws {
        logging.bootstrap()
        let logger = Logger(label: "chimera.server")
        if let parent { ChildProcess.dieWithParent(originalParent: parent) }
        var options = ParameterServerNode.Options(name: name)
        options.masterEndpoint = master
        options.host = host
        options.port = port
        options.advertiseHost = advertise
        options.maxFrameBytes = maxFrameMib << 20
        options.curve = try curve.settings()
        if options.curve != nil {
            let admitted = try CurveServerOptions.keys(curveAllow, "--curve-allow")
            guard !admitted.isEmpty else {
                throw CommandError("with CURVE the server needs --curve-allow (the workers' keys)")
            }
            options.admittedWorkerKeys = admitted
        } else if !curveAllow.isEmpty {
            throw CommandError("--curve-allow needs --curve-keys and --curve-server-key")
        }
        if !isLoopback(host) && options.curve == nil {
            logger.warning("listening on \(host) without CURVE: anyone who reaches it can read and push weights")
        }
        let node: ParameterServerNode
        do {
            node = try ParameterServerNode(options: options, logger: logger)
        } catch let error as ZMQError where error.code == .addressInUse {
            throw CommandError("\(error.detail) is already in use: choose another --port, or 0")
        }
        nonisolated(unsafe) let loop = node
        try await runServices(
            [BlockingLoopService(name: "chimera-server", stopFlag: node.stopFlag) { try loop.run() }], logger: logger)
    }
}
