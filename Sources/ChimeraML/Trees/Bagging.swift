/// Fitting a worker's members: k trees, each on a bootstrap of the shard (n draws with replacement),
/// seeded by the job's seed, the worker and the tree's index.
public enum Bagging {
    /// The seed of tree `tree` on the worker named `worker`, the same in every process.
    public static func seed(job: UInt64, worker: UInt64, tree: Int) -> UInt64 {
        var mixer = SplitMix64(seed: job ^ (worker &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(tree) &* 0xD1B5_4A32_D192_ED03))
        return mixer.next()
    }

    /// Bootstrap counts: how often each of `rows` rows was drawn in `rows` draws.
    public static func bootstrapWeights(rows: Int, random: inout SplitMix64) -> [Float] {
        var counts = [Float](repeating: 0, count: rows)
        guard rows > 0 else { return counts }
        for _ in 0..<rows { counts[Int(random.next() % UInt64(rows))] += 1 }
        return counts
    }

    /// Fits `trees` members on bootstraps of `data` (or on all rows once each when `bootstrap` is false).
    /// `bins` may be passed in when the shard's bins were computed before (they depend only on the data).
    public static func fit(
        data: Dataset, classes: [Float], settings: TreeSettings, trees: Int, workerSeed: UInt64, bootstrap: Bool = true,
        bins precomputed: FeatureBins? = nil
    ) throws(InvalidSetting) -> [DecisionTree] {
        guard data.rows > 0 else { throw InvalidSetting("the shard has no rows") }
        guard trees >= 1 else { throw InvalidSetting("trees_per_worker must be ≥ 1") }
        let bins = precomputed ?? FeatureBins(data, maxBins: settings.maxBins)
        let builder = try TreeBuilder(data: data, bins: bins, classes: classes, settings: settings)
        return (0..<trees).map { index in
            var random = SplitMix64(seed: seed(job: settings.seed, worker: workerSeed, tree: index))
            let weights =
                bootstrap
                ? bootstrapWeights(rows: data.rows, random: &random) : [Float](repeating: 1, count: data.rows)
            return builder.fit(weights: weights, random: &random)
        }
    }
}

/// The master's ensemble: the members of every worker, averaged.
public struct TreeEnsemble: Sendable {
    public var task: TreeTask
    public var featureNames: [String]
    /// Sorted class labels (classification).
    public var classes: [Float]
    public var trees: [DecisionTree]

    public init(task: TreeTask, featureNames: [String], classes: [Float], trees: [DecisionTree]) {
        self.task = task
        self.featureNames = featureNames
        self.classes = classes
        self.trees = trees
    }

    public var outputs: Int { task == .classification ? classes.count : 1 }

    /// Mean of the members' outputs: rows × outputs (class probabilities, or values).
    public func meanOutputs(_ data: Dataset) -> [Float] {
        var sum = [Float](repeating: 0, count: data.rows * outputs)
        guard !trees.isEmpty else { return sum }
        let scale = 1 / Float(trees.count)
        for tree in trees { tree.accumulate(data, scale: scale, into: &sum) }
        return sum
    }

    /// What the Python Chimera answers: P(second class) for binary classification, the most probable
    /// label for more classes, the mean value for regression.
    public func predictions(fromMeans means: [Float], rows: Int) -> [Double] {
        switch task {
        case .regression:
            return means.map(Double.init)
        case .classification where classes.count == 2:
            return (0..<rows).map { Double(means[$0 * 2 + 1]) }
        case .classification:
            return labels(fromMeans: means, rows: rows).map(Double.init)
        }
    }

    /// The most probable label of each row (classification), from the mean probabilities.
    public func labels(fromMeans means: [Float], rows: Int) -> [Float] {
        let k = max(classes.count, 1)
        return (0..<rows).map { r in
            var best = 0
            for c in 1..<k where means[r * k + c] > means[r * k + best] { best = c }
            return classes.isEmpty ? 0 : classes[best]
        }
    }
}
