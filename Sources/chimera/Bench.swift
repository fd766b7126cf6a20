import ArgumentParser
import ChimeraBenchmarks
import ChimeraCluster
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks, measured against a reference in the same run.",
        subcommands: [BenchTransport.self, BenchLatencyServer.self, BenchThroughputReceiver.self]
    )
}

struct BenchTransport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transport",
        abstract: "REQ→ROUTER round trip and PUSH→PULL throughput: our Swift layer vs raw libzmq (zmq-floor C)."
    )

    @Option(help: "The zmq-floor baseline folder (its c/ sources are compiled with gcc).")
    var floorDir = "../shared/baselines/zmq-floor"
    @Option(help: "tcp or ipc.") var transport = "tcp"
    @Option(help: "Interleaved repeats; medians are reported.") var repeats = 3
    @Flag(help: "One repeat with short windows (a smoke test).") var quick = false
    @Option(help: "Also write the Markdown report to this file.") var output: String?
    @Option(help: "Round-trip sizes, comma-separated (8,1k,64k,1m); empty skips the latency part.")
    var latencySizes = "8,1k,64k,1m"
    @Option(help: "Throughput sizes, comma-separated (1k,…,64m); empty skips the throughput part.")
    var throughputSizes = "1k,64k,1m,16m,64m"

    func run() throws {
        var options = TransportBenchmark.Options(floorDirectory: URL(fileURLWithPath: floorDir))
        options.transport = transport
        options.repeats = repeats
        options.latencySizes = latencySizes.split(separator: ",").map(String.init)
        options.throughputSizes = throughputSizes.split(separator: ",").map(String.init)
        if quick {
            options.repeats = 1
            options.latencySeconds = 0.3
            options.throughputMiB = 128
        }
        let report = try TransportBenchmark.run(options) { FileHandle.standardError.write(Data("bench: \($0)\n".utf8)) }
        print(report)
        if let output { try report.write(toFile: output, atomically: true, encoding: .utf8) }
    }
}

struct BenchLatencyServer: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lat-server", shouldDisplay: false)
    @Option var endpoint: String
    @Option var mode = "zc"
    @Option var maxSize = 1 << 20

    func run() throws {
        ChildProcess.dieWithParent(originalParent: getppid())
        try SwiftTransportProbes.latencyServer(endpoint: endpoint, zeroCopy: mode == "zc", maxSize: maxSize)
    }
}

struct BenchThroughputReceiver: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "thr-receiver", shouldDisplay: false)
    @Option var endpoint: String
    @Option var mode = "zc"
    @Option var size: Int
    @Option var count: Int

    func run() throws {
        ChildProcess.dieWithParent(originalParent: getppid())
        try SwiftTransportProbes.throughputReceiver(endpoint: endpoint, zeroCopy: mode == "zc", size: size, count: count)
    }
}
