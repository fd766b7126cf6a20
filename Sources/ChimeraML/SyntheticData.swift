/// Deterministic synthetic datasets, for tests, benchmarks, sweeps and `chimera data synth`.
public enum SyntheticData {
    public enum Task: String, Sendable, CaseIterable, Codable {
        case classification, regression
    }

    public struct Specification: Sendable, Equatable, Codable {
        public var task: Task = .classification
        public var rows = 10_000
        public var features = 20
        public var classes = 2
        /// Features that carry signal; the rest are noise.
        public var informative = 8
        /// Classification: fraction of labels flipped at random. Regression: noise standard deviation
        /// relative to the signal's.
        public var noise: Double = 0.02
        /// Regression: add a non-linear term (sin and products) to the target.
        public var nonlinear = false
        public var seed: UInt64 = 1

        public init() {}
    }

    /// Rows from class-dependent Gaussian clusters (classification) or a linear-plus-noise target
    /// (regression). Column names are `f0…f{d−1}`.
    public static func generate(_ spec: Specification) -> Dataset {
        var random = SplitMix64(seed: spec.seed)
        let d = spec.features
        let informative = min(max(spec.informative, 1), d)
        var features = [Float](repeating: 0, count: spec.rows * d)
        var labels = [Float](repeating: 0, count: spec.rows)
        switch spec.task {
        case .classification:
            let k = max(spec.classes, 2)
            // Each class centre sits at ±1.5 on every informative axis.
            let centres = (0..<k).map { _ in (0..<informative).map { _ in random.nextUnit() < 0.5 ? Float(-1.5) : 1.5 }
            }
            for row in 0..<spec.rows {
                let label = Int(random.next() % UInt64(k))
                for j in 0..<d {
                    let centre = j < informative ? centres[label][j] : 0
                    features[row * d + j] = centre + random.nextGaussian()
                }
                let flipped = Double(random.nextUnit()) < spec.noise
                labels[row] = Float(flipped ? Int(random.next() % UInt64(k)) : label)
            }
        case .regression:
            let coefficients = (0..<informative).map { _ in random.nextGaussian() * 2 }
            for row in 0..<spec.rows {
                var target: Float = 0
                for j in 0..<d {
                    let x = random.nextGaussian()
                    features[row * d + j] = x
                    if j < informative { target += coefficients[j] * x }
                }
                if spec.nonlinear, d >= 2 {
                    let x0 = features[row * d]
                    let x1 = features[row * d + 1]
                    target += 3 * sinf(2 * x0) + 2 * x0 * x1
                }
                labels[row] = target + Float(spec.noise) * random.nextGaussian() * 2
            }
        }
        return Dataset(featureNames: (0..<d).map { "f\($0)" }, features: features, labels: labels)
    }

    /// Contiguous partitions; the first `rows % n` parts get one extra row (as the Python examples do).
    public static func partition(_ data: Dataset, parts: Int) -> [Dataset] {
        let n = max(parts, 1)
        var out: [Dataset] = []
        var start = 0
        for index in 0..<n {
            let size = data.rows / n + (index < data.rows % n ? 1 : 0)
            out.append(data.slice(start..<(start + size)))
            start += size
        }
        return out
    }

    /// A seeded shuffle split into (train, test) with `testFraction` of the rows held out.
    public static func split(_ data: Dataset, testFraction: Double, seed: UInt64) -> (train: Dataset, test: Dataset) {
        var random = SplitMix64(seed: seed)
        var indices = Array(0..<data.rows)
        indices.shuffle(using: &random)
        let testCount = Int((Double(data.rows) * testFraction).rounded())
        return (data.gather(Array(indices[testCount...])), data.gather(Array(indices[..<testCount])))
    }
}

#if canImport(Glibc)
    import Glibc
#endif
