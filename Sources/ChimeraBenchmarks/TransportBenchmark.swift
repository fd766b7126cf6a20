import ChimeraCluster
public import Foundation

/// `chimera bench transport`: REQ→ROUTER round trips and PUSH→PULL throughput through our Swift layer
/// and, in the same run and interleaved, through raw libzmq (the zmq-floor C programs). Prints ratios.
public enum TransportBenchmark {
    public struct Options: Sendable {
        public var floorDirectory: URL
        public var transport = "tcp"
        public var repeats = 3
        public var latencySeconds = 0.7
        public var throughputMiB = 512.0
        public var latencySizes = ["8", "1k", "64k", "1m"]
        public var throughputSizes = ["1k", "64k", "1m", "16m", "64m"]

        public init(floorDirectory: URL) { self.floorDirectory = floorDirectory }
    }

    /// Runs everything and returns the report as Markdown. `log` gets progress lines.
    public static func run(_ options: Options, log: (String) -> Void) throws -> String {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("chimera-bench-\(getpid())")
        let ipc = scratch.appendingPathComponent("ipc")
        try FileManager.default.createDirectory(at: ipc, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }

        log("compiling the raw-libzmq floor programs from \(options.floorDirectory.path)")
        let floor = try FloorPrograms(floorDirectory: options.floorDirectory, scratch: scratch)
        let latencySizes = try options.latencySizes.map(size)
        let throughputSizes = try options.throughputSizes.map(size)
        let t = options.transport

        var results: [ResultLine] = []
        for repeat_ in 1...options.repeats {
            for mode in ["copy", "zc"] {
                if !latencySizes.isEmpty {
                    log("repeat \(repeat_)/\(options.repeats): latency \(mode) (C, then Swift)")
                    results += try floor.run(
                        "lat", [t, mode, "\(options.latencySeconds)"] + options.latencySizes, ipcDirectory: ipc
                    ).map { tagged($0, "c") }
                    results += try SwiftTransportProbes.latencyClient(
                        transport: t, zeroCopy: mode == "zc", seconds: options.latencySeconds, sizes: latencySizes,
                        ipcDirectory: ipc
                    ).map { tagged($0, "swift") }
                }
                if !throughputSizes.isEmpty {
                    log("repeat \(repeat_)/\(options.repeats): throughput \(mode) (C, then Swift)")
                    results += try floor.run(
                        "thr", [t, mode, "\(options.throughputMiB)"] + options.throughputSizes, ipcDirectory: ipc
                    ).map { tagged($0, "c") }
                    results += try SwiftTransportProbes.throughputSender(
                        transport: t, zeroCopy: mode == "zc", targetMiB: options.throughputMiB, sizes: throughputSizes,
                        ipcDirectory: ipc
                    ).map { tagged($0, "swift") }
                }
            }
        }
        return report(results, options: options, latencySizes: latencySizes, throughputSizes: throughputSizes)
    }

    private static func size(_ text: String) throws -> Int {
        guard let value = parseSize(text) else { throw BenchmarkError("not a size: \(text)") }
        return value
    }

    private static func tagged(_ line: ResultLine, _ impl: String) -> ResultLine {
        var text = line.kind
        for (key, value) in line.fields.sorted(by: { $0.key < $1.key }) { text += " \(key)=\(value)" }
        return ResultLine(text + " impl=\(impl)")!
    }

    private static func pick(
        _ results: [ResultLine], _ kind: String, impl: String, mode: String, bytes: Int, _ metric: String
    )
        -> Double?
    {
        median(
            results.filter {
                $0.kind == kind && $0.fields["impl"] == impl && $0.fields["mode"] == mode
                    && $0.fields["bytes"] == "\(bytes)"
            }.compactMap { $0.number(metric) })
    }

    static func report(_ results: [ResultLine], options: Options, latencySizes: [Int], throughputSizes: [Int]) -> String
    {
        func f(_ value: Double?, _ digits: Int = 1) -> String {
            value.map { String(format: "%.\(digits)f", $0) } ?? "–"
        }
        var out = "### REQ→ROUTER round trip over \(options.transport) (median µs, \(options.repeats) repeat(s))\n\n"
        out += "| size | mode | raw libzmq (C) | Swift layer | ratio | added µs |\n|---|---|---:|---:|---:|---:|\n"
        for mode in ["copy", "zc"] {
            for bytes in latencySizes {
                let c = pick(results, "lat", impl: "c", mode: mode, bytes: bytes, "median_us")
                let s = pick(results, "lat", impl: "swift", mode: mode, bytes: bytes, "median_us")
                let ratio = (c != nil && s != nil) ? s! / c! : nil
                let added = (c != nil && s != nil) ? s! - c! : nil
                out += "| \(sizeLabel(bytes)) | \(mode) | \(f(c)) | \(f(s)) | \(f(ratio, 2))× | \(f(added)) |\n"
            }
        }
        out += "\n### PUSH→PULL one-way throughput over \(options.transport) (median MB/s)\n\n"
        out += "| size | mode | raw libzmq (C) | Swift layer | time ratio (Swift/C) |\n|---|---|---:|---:|---:|\n"
        for mode in ["copy", "zc"] {
            for bytes in throughputSizes {
                let c = pick(results, "thr", impl: "c", mode: mode, bytes: bytes, "MBps")
                let s = pick(results, "thr", impl: "swift", mode: mode, bytes: bytes, "MBps")
                let ratio = (c != nil && s != nil) ? c! / s! : nil
                out += "| \(sizeLabel(bytes)) | \(mode) | \(f(c, 0)) | \(f(s, 0)) | \(f(ratio, 2))× |\n"
            }
        }
        // Targets: ≤ 1.1× raw time for frames ≥ 64 KiB; ≤ 20 µs added round trip for small messages.
        var verdicts: [String] = []
        for mode in ["copy", "zc"] {
            let large = throughputSizes.filter { $0 >= 64 << 10 }.compactMap { bytes -> Double? in
                guard let c = pick(results, "thr", impl: "c", mode: mode, bytes: bytes, "MBps"),
                    let s = pick(results, "thr", impl: "swift", mode: mode, bytes: bytes, "MBps")
                else { return nil }
                return c / s
            }
            let largeLatency = latencySizes.filter { $0 >= 64 << 10 }.compactMap { bytes -> Double? in
                guard let c = pick(results, "lat", impl: "c", mode: mode, bytes: bytes, "median_us"),
                    let s = pick(results, "lat", impl: "swift", mode: mode, bytes: bytes, "median_us")
                else { return nil }
                return s / c
            }
            let small = latencySizes.filter { $0 <= 1 << 10 }.compactMap { bytes -> Double? in
                guard let c = pick(results, "lat", impl: "c", mode: mode, bytes: bytes, "median_us"),
                    let s = pick(results, "lat", impl: "swift", mode: mode, bytes: bytes, "median_us")
                else { return nil }
                return s - c
            }
            let worstLarge = (large + largeLatency).max()
            verdicts.append(
                "- \(mode): worst time ratio for frames ≥ 64 KiB \(f(worstLarge, 2))× (target ≤ 1.10×: "
                    + "\((worstLarge ?? 9) <= 1.1 ? "met" : "not met")); worst added round trip for ≤ 1 KiB "
                    + "\(f(small.max())) µs (target ≤ 20 µs: \((small.max() ?? 99) <= 20 ? "met" : "not met"))")
        }
        out += "\n" + verdicts.joined(separator: "\n") + "\n"
        return out
    }
}
