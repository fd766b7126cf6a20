import ArgumentParser
import ChimeraCluster
import Foundation

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Start a master-like ROUTER/PUB and worker processes that exchange tensor frames; print what was measured."
    )

    @Option(help: "Worker processes to start.") var workers = 3
    @Option(help: "Rounds of weights broadcast + gradient gather.") var rounds = 200
    @Option(help: "Floats per weights/gradient tensor.") var floats = 100_000
    @Option(help: "tcp (127.0.0.1, OS-chosen ports) or ipc.") var transport = "tcp"

    func validate() throws {
        guard (1...64).contains(workers) else { throw ValidationError("--workers must be 1…64") }
        guard rounds >= 3 else { throw ValidationError("--rounds must be at least 3") }
        guard floats >= 3 else { throw ValidationError("--floats must be at least 3") }
        guard ["tcp", "ipc"].contains(transport) else { throw ValidationError("--transport must be tcp or ipc") }
    }

    func run() throws {
        var options = TransportDemo.Options()
        options.workers = workers
        options.rounds = rounds
        options.floats = floats
        options.transport = transport
        let report = try TransportDemo.runMaster(options) { line in
            FileHandle.standardError.write(Data("\(line)\n".utf8))
        }
        let median = report.rounds.median * 1e3
        print("chimera demo: \(report.workers) worker processes, \(report.floats) float32 per tensor, \(transport)")
        print(String(format: "  registration + PUB handshake: %.1f ms", report.registrationSeconds * 1e3))
        print(
            String(
                format: "  rounds timed: %d   median %.3f ms   p99 %.3f ms   min %.3f ms",
                report.rounds.count, median, report.rounds.p99 * 1e3, report.rounds.min * 1e3))
        print(
            String(
                format: "  tensor bytes per round: %.1f MB   effective %.2f GB/s",
                Double(report.bytesPerRound) / 1e6, Double(report.bytesPerRound) / report.rounds.median / 1e9))
        print(
            "  sums checked: \(report.wrongSums == 0 ? "all correct" : "\(report.wrongSums) WRONG")   rejected messages: \(report.decodeErrors)"
        )
        if report.wrongSums > 0 { throw ExitCode(2) }
    }
}

struct DemoWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-worker", abstract: "A worker process of `chimera demo` (started by it).",
        shouldDisplay: false)

    @Option var router: String
    @Option var pub: String
    @Option var name: String
    @Option(help: "The parent's pid: exit when it dies.") var parent: Int32?

    func run() throws {
        if let parent { ChildProcess.dieWithParent(originalParent: parent) }
        try TransportDemo.runWorker(routerEndpoint: router, pubEndpoint: pub, name: name)
    }
}
