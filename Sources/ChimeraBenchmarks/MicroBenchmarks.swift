import ChimeraCluster
public import ChimeraML
import ChimeraPredictBody
import ChimeraWire
import Foundation
import ZeroMQ

/// Single-process timings of the hot parts (`chimera bench tree|kernel|codec|json`): best of N, so the
/// figure is the part's own cost rather than the machine's noise. Each returns the lines it measured.
public enum MicroBenchmarks {
    /// Binning, growing and predicting with one CART tree on a synthetic shard.
    public static func tree(rows: Int, features: Int, maxDepth: Int, maxLeafNodes: Int, repeats: Int) throws -> String {
        var spec = SyntheticData.Specification()
        spec.rows = rows
        spec.features = features
        let data = SyntheticData.generate(spec)
        var settings = TreeSettings()
        settings.maxDepth = maxDepth
        settings.maxLeafNodes = maxLeafNodes
        var binning: [Double] = []
        var growing: [Double] = []
        var predicting: [Double] = []
        var leaves = 0
        for index in 0..<repeats {
            var start = monotonicSeconds()
            let bins = FeatureBins(data, maxBins: settings.maxBins)
            binning.append(monotonicSeconds() - start)
            let builder = try TreeBuilder(data: data, bins: bins, classes: [0, 1], settings: settings)
            var random = SplitMix64(seed: UInt64(index))
            let weights = Bagging.bootstrapWeights(rows: rows, random: &random)
            start = monotonicSeconds()
            let tree = builder.fit(weights: weights, random: &random)
            growing.append(monotonicSeconds() - start)
            leaves = tree.leafCount
            start = monotonicSeconds()
            let predicted = tree.predict(data)
            predicting.append(monotonicSeconds() - start)
            precondition(predicted.count == rows * 2)
        }
        return String(
            format:
                "%d × %d: binning %.2f ms, growing (%d leaves) %.2f ms, predicting every row %.1f ns per row (best of %d)",
            rows, features, binning.min()! * 1e3, leaves, growing.min()! * 1e3, predicting.min()! / Double(rows) * 1e9,
            repeats)
    }

    /// One mini-batch step of an MLP worker: drawing the batch from a shard of `rows`, and the
    /// loss+gradient pass (forward and backward through OpenBLAS), with the products' rate.
    public static func mlpStep(
        rows: Int, features: Int, hidden: [Int], classes: Int, batch: Int, repeats: Int
    ) throws -> String {
        var spec = SyntheticData.Specification()
        spec.rows = rows
        spec.features = features
        spec.classes = classes
        let data = SyntheticData.generate(spec)
        var configuration = TrainingConfiguration()
        configuration.model = .mlp
        configuration.hidden = hidden
        configuration.batchSize = batch
        let objective = try Objective(
            configuration: configuration, features: features, classes: (0..<classes).map(Float.init))
        let network = objective.network!
        let weights = objective.initialWeights(seed: 1)
        var gradient = weights
        var sampler = MinibatchSampler(rows: rows, seed: 7)
        var sampling: [Double] = []
        var passing: [Double] = []
        for _ in 0..<repeats {
            var start = monotonicSeconds()
            let drawn = sampler.batch(of: data, size: batch)
            sampling.append(monotonicSeconds() - start)
            start = monotonicSeconds()
            _ = objective.lossAndGradient(weights: weights, data: drawn, gradient: &gradient)
            passing.append(monotonicSeconds() - start)
        }
        // Forward, and the two backward products (weights' and inputs' gradients): 3 × 2·m·n·batch.
        let sizes = network.layerSizes
        let flops = (0..<(sizes.count - 1)).reduce(0.0) { $0 + 6 * Double(sizes[$1] * sizes[$1 + 1] * batch) }
        let best = passing.sorted()[repeats / 2]
        return String(
            format:
                "mlp %@, batch %d: loss+gradient %.3f ms (median of %d, %.1f GFLOP/s of products); batch drawn from %d rows %.1f µs; OpenBLAS core %@",
            network.summary, batch, best * 1e3, repeats, flops / best / 1e9, rows, sampling.sorted()[repeats / 2] * 1e6,
            BLASCore.current)
    }

    /// One full-batch loss+gradient pass of a linear model: row-major, and blocked on 1 and 2 threads.
    public static func kernel(rows: Int, features: Int, model: ModelKind, repeats: Int) -> String {
        var spec = SyntheticData.Specification()
        spec.rows = rows
        spec.features = features
        spec.classes = model == .softmax ? 5 : 2
        spec.task = model == .linearRegression ? .regression : .classification
        let data = SyntheticData.generate(spec)
        let classes: [Float] = model == .linearRegression ? [] : (0..<spec.classes).map(Float.init)
        let objective = Objective(kind: model, features: features, classes: classes)
        let weights = [Float](repeating: 0.01, count: objective.weightCount)
        var gradient = weights
        var lines: [String] = []
        func best(_ pass: () -> Void) -> Double {
            (0..<repeats).map { _ in
                let start = monotonicSeconds()
                pass()
                return monotonicSeconds() - start
            }.min()!
        }
        func report(_ label: String, _ seconds: Double) {
            lines.append(
                String(
                    format: "%@ %@: %.3f ms per pass, %.2f ns per row (best of %d)", model.rawValue, label,
                    seconds * 1e3,
                    seconds / Double(rows) * 1e9, repeats))
        }
        report("row-major", best { _ = objective.lossAndGradient(weights: weights, data: data, gradient: &gradient) })
        if objective.outputs == 1 {
            let blocked = BlockedRows(data)
            for threads in [1, 2] {
                report(
                    "blocked, \(threads) thread(s)",
                    best {
                        _ = objective.lossAndGradient(
                            weights: weights, rows: blocked, threads: threads, gradient: &gradient)
                    })
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Encode + decode of the parameter server's per-round messages: the generic codec and the round codec.
    public static func codec(repeats: Int) throws -> String {
        let gradient = NamedTensor("gradient", .float32([Float](repeating: 0.5, count: 22), shape: [1, 22]))
        var push = Chimera_V1_GradientPush()
        push.workerID = 1
        push.jobID = 3
        push.clock = 17
        push.rows = 100
        push.loss = 0.25
        push.thenPull = true
        var header = Chimera_V1_Weights()
        header.jobID = 3
        header.version = 17
        let weights = NamedTensor("weights", .float32([Float](repeating: 0.5, count: 22), shape: [1, 22]))
        let messages = [
            ("GradientPush", WireMessage(.gradientPush(push), requestID: 9, tensors: [gradient])),
            ("Weights", WireMessage(.weights(header), requestID: 9, tensors: [weights])),
        ]
        var lines: [String] = []
        for (name, message) in messages {
            var encodeBest = Double.infinity
            var decodeBest = Double.infinity
            for _ in 0..<5 {
                var frames: [Frame] = []
                var start = monotonicSeconds()
                for _ in 0..<repeats { frames = try WireCodec.encode(message) }
                encodeBest = min(encodeBest, (monotonicSeconds() - start) / Double(repeats))
                start = monotonicSeconds()
                for _ in 0..<repeats { _ = try WireCodec.decode(frames) }
                decodeBest = min(decodeBest, (monotonicSeconds() - start) / Double(repeats))
            }
            lines.append(
                String(
                    format: "%@, generic codec: encode %.2f µs, decode %.2f µs", name, encodeBest * 1e6,
                    decodeBest * 1e6))
        }
        // The round codec the master and workers use for these two messages.
        let values = [Float](repeating: 0.5, count: 22)
        let round: [(String, () throws -> [Frame], ([Frame]) -> Bool)] = [
            (
                "GradientPush",
                {
                    try values.withUnsafeBufferPointer {
                        try RoundCodec.encode(push, requestID: 9, update: $0, outputs: 1, stride: 22)
                    }
                },
                { RoundCodec.decodePush($0[...]) != nil }
            ),
            (
                "Weights",
                {
                    try values.withUnsafeBufferPointer {
                        try RoundCodec.encode(header, requestID: 9, weights: $0, outputs: 1, stride: 22)
                    }
                },
                { RoundCodec.decodeWeights($0[...]) != nil }
            ),
        ]
        for (name, encode, decode) in round {
            var encodeBest = Double.infinity
            var decodeBest = Double.infinity
            for _ in 0..<5 {
                var frames: [Frame] = []
                var start = monotonicSeconds()
                for _ in 0..<repeats { frames = try encode() }
                encodeBest = min(encodeBest, (monotonicSeconds() - start) / Double(repeats))
                start = monotonicSeconds()
                for _ in 0..<repeats where !decode(frames) {
                    throw ClusterError("the round codec declined its own \(name)")
                }
                decodeBest = min(decodeBest, (monotonicSeconds() - start) / Double(repeats))
            }
            lines.append(
                String(
                    format: "%@, round codec: encode %.2f µs, decode %.2f µs", name, encodeBest * 1e6, decodeBest * 1e6)
            )
        }
        return lines.joined(separator: "\n")
    }

    /// The Python Chimera's predict body as a Codable type, for the JSONDecoder row.
    struct DecodedPredictBody: Decodable {
        let X_pred_columns: [String]
        let X_pred_rows: [[Double]]
    }

    /// Reading a predict body: the gateway's reader (one and two cores) vs Foundation's JSONDecoder
    /// (into Codable types) and JSONSerialization.
    public static func predictBody(_ bytes: [UInt8], repeats: Int) throws -> String {
        let (rows, columns) = try readPredictBody(bytes, split: false)
        let numbers = Double(rows * columns)
        func best(_ read: () throws -> Void) rethrows -> Double {
            var fastest = Double.infinity
            for _ in 0..<repeats {
                let start = monotonicSeconds()
                try read()
                fastest = min(fastest, monotonicSeconds() - start)
            }
            return fastest
        }
        let data = Data(bytes)
        let serialization = try best { _ = try JSONSerialization.jsonObject(with: data) }
        let decoder = try best { _ = try JSONDecoder().decode(DecodedPredictBody.self, from: data) }
        var lines = [
            String(format: "%d × %d body, %d bytes, best of %d", rows, columns, bytes.count, repeats),
            String(
                format: "Foundation JSONSerialization: %.1f µs (%.1f ns per number)", serialization * 1e6,
                serialization / numbers * 1e9),
            String(
                format: "Foundation JSONDecoder (Codable): %.1f µs (%.1f ns per number)", decoder * 1e6,
                decoder / numbers * 1e9),
        ]
        for split in [false, true] {
            let ours = try best { _ = try readPredictBody(bytes, split: split) }
            lines.append(
                String(
                    format:
                        "gateway reader%@: %.1f µs (%.1f ns per number), %.0f× JSONDecoder, %.0f× JSONSerialization",
                    split ? ", two cores" : "", ours * 1e6, ours / numbers * 1e9, decoder / ours, serialization / ours))
        }
        return lines.joined(separator: "\n")
    }
}
