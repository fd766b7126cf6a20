import ChimeraCluster
import ChimeraML
import ChimeraWire
public import Foundation

/// `chimera bench features`: one logistic regression, full-batch gradient descent, trained on N workers
/// two ways in the same run, interleaved — data-parallel (each worker a block of the rows, every
/// column) and feature-partitioned (each worker a block of the columns, every row) — on a tall and a
/// wide data set with the same number of values. Milliseconds per iteration (the median gap between
/// the timeline's updates) and the master's bytes per iteration, medians of repeats.
public enum FeaturePartitionBenchmark {
    public struct Options: Sendable {
        public var scratch: URL
        public var workers = 4
        public var repeats = 3
        public var iterations = 20
        /// (rows, features) per table row.
        public var shapes: [(rows: Int, features: Int)] = [(10_000, 2_000), (1_000, 20_000)]

        public init(scratch: URL) { self.scratch = scratch }
    }

    struct Run {
        let millisecondsPerIteration: Double
        let bytesPerIteration: Double
    }

    public static func run(_ options: Options, log: (String) -> Void) throws -> String {
        var out =
            "### Feature-partitioned vs data-parallel logistic regression, same run\n\n"
            + "\(options.workers) workers, full-batch gradient descent, \(options.iterations) iterations, \(options.repeats) interleaved repeats, medians; ms per iteration = the median gap between the fit's updates.\n\n"
            + "| rows × features | data-parallel ms/iteration | feature blocks ms/iteration | blocks ÷ data-parallel | data-parallel bytes/iteration | feature blocks bytes/iteration |\n"
            + "|---|---:|---:|---:|---:|---:|\n"
        for shape in options.shapes {
            log("writing \(shape.rows) × \(shape.features) as row shards and as column blocks")
            var spec = SyntheticData.Specification()
            spec.rows = shape.rows
            spec.features = shape.features
            spec.classes = 2
            spec.informative = min(20, shape.features)
            let data = SyntheticData.generate(spec)
            let folder = options.scratch.appendingPathComponent("features-\(shape.rows)x\(shape.features)")
            try? FileManager.default.removeItem(at: folder)
            let rowsFolder = folder.appendingPathComponent("rows")
            let columnsFolder = folder.appendingPathComponent("columns")
            try ShardLayout.write(
                shards: SyntheticData.partition(data, parts: options.workers), test: nil, to: rowsFolder)
            try ShardLayout.write(
                shards: FeatureBlock.blocks(features: shape.features, parts: options.workers).map { data.columns($0) },
                test: nil, to: columnsFolder)
            for index in 1...options.workers {
                try "block\n".write(
                    to: columnsFolder.appendingPathComponent("worker-\(index)").appendingPathComponent(
                        ShardLayout.columnBlockMark), atomically: true, encoding: .utf8)
            }
            let shards = { (root: URL) in (1...options.workers).map { root.appendingPathComponent("worker-\($0)") } }
            let dataParallel = try SwiftChimeraCluster(
                mode: .parameterServer, shards: shards(rowsFolder), threads: 1)
            let blocks = try SwiftChimeraCluster(mode: .parameterServer, shards: shards(columnsFolder), threads: 1)
            var rowRuns: [Run] = []
            var blockRuns: [Run] = []
            for _ in 0..<options.repeats {
                rowRuns.append(try fit(dataParallel, options, features: false))
                blockRuns.append(try fit(blocks, options, features: true))
                log(
                    String(
                        format: "%d × %d: data-parallel %.2f ms, feature blocks %.2f ms", shape.rows, shape.features,
                        rowRuns.last!.millisecondsPerIteration, blockRuns.last!.millisecondsPerIteration))
            }
            let rows = median(rowRuns.map(\.millisecondsPerIteration))
            let columns = median(blockRuns.map(\.millisecondsPerIteration))
            out +=
                "| \(shape.rows) × \(shape.features) | \(f(rows, 2)) | \(f(columns, 2)) | \(f(MLPBenchmark.ratio(columns, rows), 2))× | \(f(median(rowRuns.map(\.bytesPerIteration)), 0)) | \(f(median(blockRuns.map(\.bytesPerIteration)), 0)) |\n"
            try? FileManager.default.removeItem(at: folder)
        }
        return out + "\n"
    }

    static func f(_ value: Double?, _ digits: Int) -> String { MLPBenchmark.f(value, digits) }

    static func fit(_ cluster: SwiftChimeraCluster, _ options: Options, features: Bool) throws -> Run {
        var request = Chimera_V1_FitRequest()
        request.kind = .parameterServer
        request.config = try FitSettings.parse(
            arguments: [
                "--model", "logistic", "--iterations", "\(options.iterations)", "--eta0", "0.1", "--penalty", "none",
            ] + (features ? ["--parallelism", "features"] : [])
        ).wire(mode: .parameterServer)
        request.config.recordTimeline = true
        let reply = try cluster.client.fit(request)
        guard reply.state == .succeeded else { throw BenchmarkError("the fit ended \(reply.state)") }
        let stamps = reply.report.timeline.map(\.seconds)
        let gaps = zip(stamps.dropFirst(2), stamps.dropFirst()).map { ($0 - $1) * 1e3 }
        return Run(
            millisecondsPerIteration: median(gaps) ?? 0,
            bytesPerIteration: Double(reply.report.bytesSent + reply.report.bytesReceived)
                / Double(max(reply.report.iterations, 1)))
    }
}
