import ChimeraCluster
import ChimeraML
public import Foundation

/// `chimera bench scale`: the parameter server's round as the workers grow (N = 1 … 64, tiny shards),
/// against the raw-libzmq C round `psround tcp N 22` at the same N in the same run, interleaved,
/// medians of repeats. Tiny shards (100 rows × 21 features: 22 weights, as psround moves) make the
/// round all overhead: messages, the barrier and the step, which is what grows with N.
public enum ScaleBenchmark {
    public struct Options: Sendable {
        public var floorDirectory: URL
        public var scratch: URL
        public var workers = [1, 2, 4, 8, 16, 32, 64]
        public var iterations = 1000
        public var repeats = 3

        public init(floorDirectory: URL, scratch: URL) {
            self.floorDirectory = floorDirectory
            self.scratch = scratch
        }
    }

    public static func run(_ options: Options, log: (String) -> Void) throws -> String {
        let psround = try PSRound(floorDirectory: options.floorDirectory, scratch: options.scratch, log: log)
        var out = "### The round as workers are added: Chimera vs raw libzmq (`psround tcp N 22`), same run\n\n"
        out +=
            "Tiny shards (100 rows × 21 features per worker), BSP logistic regression, fits of \(options.iterations) iterations, median round over the fit; psround 1.5 s per run; \(options.repeats) interleaved repeats, medians.\n\n"
        out += "| N | Chimera median round ms | psround median round ms | Chimera ÷ psround |\n|---:|---:|---:|---:|\n"
        for n in options.workers {
            log("N = \(n): \(options.repeats) × (a Chimera fit of \(options.iterations) iterations, psround)")
            let folder = options.scratch.appendingPathComponent("scale-data/N\(n)")
            try? FileManager.default.removeItem(at: folder)
            var spec = SyntheticData.Specification()
            spec.rows = 100
            spec.features = 21
            spec.classes = 2
            let shards = (1...n).map { index -> Dataset in
                spec.seed = UInt64(index)
                return SyntheticData.generate(spec)
            }
            try ShardLayout.write(shards: shards, test: nil, to: folder)
            let cluster = try ParameterServerBenchmark.SwiftFits(
                shards: (1...n).map { folder.appendingPathComponent("worker-\($0)") })
            var ours: [Double] = []
            var floors: [Double] = []
            for _ in 0..<options.repeats {
                if let round = try cluster.fit(test: nil, iterations: options.iterations, log: log).medianRoundSeconds {
                    ours.append(round * 1000)
                }
                if let floor = try psround.medianRound(workers: n, floats: 22) { floors.append(floor) }
            }
            let round = median(ours)
            let floor = median(floors)
            out +=
                "| \(n) | \(ParameterServerBenchmark.format(round, 3)) | \(ParameterServerBenchmark.format(floor, 3)) | \(ParameterServerBenchmark.format(round.flatMap { r in floor.map { r / $0 } }, 2))× |\n"
        }
        return out
    }
}
