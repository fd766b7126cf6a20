import ArgumentParser
import ChimeraCluster
import Logging
import ServiceLifecycle
import UnixSignals
import ZeroMQ

/// `--log-level` and `--log-format` of the long-running commands (master, worker, gateway, local).
struct LoggingOptions: ParsableArguments {
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel = "info"
    @Option(help: "text (for people) or json (one object per line, for log shippers).") var logFormat = "text"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level: trace, debug, info, notice, warning, error or critical")
        }
        guard LogFormat(rawValue: logFormat) != nil else { throw ValidationError("--log-format: text or json") }
    }

    /// Installs swift-log's handler for this process; call first thing in `run()`.
    func bootstrap() {
        ChimeraLogHandler.bootstrap(
            level: Logger.Level(rawValue: logLevel) ?? .info, format: LogFormat(rawValue: logFormat) ?? .text)
    }

    /// The same options for a child process.
    var arguments: [String] { ["--log-level", logLevel, "--log-format", logFormat] }
}

/// A blocking loop (the master's, a worker's, `chimera local`'s) as a ServiceLifecycle service: it runs
/// on its own thread, and a graceful shutdown (SIGTERM, SIGINT) sets its stop flag.
struct BlockingLoopService: Service {
    let name: String
    let stopFlag: StopFlag
    let body: @Sendable () throws -> Void

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await DedicatedThread.run(name: name, body)
        } onGracefulShutdown: {
            stopFlag.stop()
        }
    }
}

/// Runs services until SIGTERM or SIGINT (then shuts them all down gracefully) or until one of them
/// ends (then the others are shut down too).
func runServices(_ services: [any Service], logger: Logger) async throws {
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: services.map {
                .init(
                    service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup)
            },
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await group.run()
}

/// A flag set on SIGINT or SIGTERM, for commands that follow a job and cancel it when interrupted.
func interruptionFlag() -> StopFlag {
    let flag = StopFlag()
    Task {
        for await _ in await UnixSignalsSequence(trapping: .sigint, .sigterm) { flag.stop() }
    }
    return flag
}
