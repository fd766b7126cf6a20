/// What a decision tree predicts.
public enum TreeTask: String, Sendable, Codable, Equatable {
    /// Class probabilities (one output per class).
    case classification
    /// One value.
    case regression
}

/// How a split is scored.
public enum SplitCriterion: String, Sendable, Codable, CaseIterable, Equatable {
    case gini, entropy
    case squaredError = "squared_error"

    public var task: TreeTask { self == .squaredError ? .regression : .classification }
}

/// How many features each split considers (random-forest style when fewer than all).
public enum MaxFeatures: Sendable, Equatable, Codable, CustomStringConvertible {
    case all, sqrt, log2
    /// A fraction of the features in (0, 1].
    case fraction(Double)
    /// A fixed count (at most the number of features).
    case count(Int)

    /// Parses "all", "sqrt", "log2", a fraction such as "0.5" or a count such as "5"; empty is "all".
    public init(parsing text: String) throws(InvalidSetting) {
        let trimmed = text.lowercased().filter { !$0.isWhitespace }
        switch trimmed {
        case "", "all", "none", "auto": self = .all
        case "sqrt": self = .sqrt
        case "log2": self = .log2
        default:
            if !trimmed.contains("."), let count = Int(trimmed), count >= 1 {
                self = .count(count)
            } else if let fraction = Double(trimmed), fraction > 0, fraction <= 1 {
                self = .fraction(fraction)
            } else {
                throw InvalidSetting(
                    "max_features must be all, sqrt, log2, a fraction in (0, 1] or a count ≥ 1; got \"\(text)\"")
            }
        }
    }

    /// Features per split out of `features` (at least 1).
    public func count(of features: Int) -> Int {
        let n = Double(features)
        let value: Int =
            switch self {
            case .all: features
            case .sqrt: Int(n.squareRoot())
            case .log2: Int(LibM.log2(n))
            case .fraction(let f): Int(f * n)
            case .count(let c): c
            }
        return min(max(value, 1), features)
    }

    public var description: String {
        switch self {
        case .all: "all"
        case .sqrt: "sqrt"
        case .log2: "log2"
        case .fraction(let f): "\(f)"
        case .count(let c): "\(c)"
        }
    }
}

/// CART settings; the defaults are scikit-learn's (fully grown trees on every feature).
public struct TreeSettings: Sendable, Equatable, Codable {
    public var criterion: SplitCriterion = .gini
    /// 0: unlimited.
    public var maxDepth = 0
    public var minSamplesSplit = 2
    public var minSamplesLeaf = 1
    public var maxFeatures: MaxFeatures = .all
    /// 0: unlimited. When set, nodes are expanded best first (largest impurity decrease first).
    public var maxLeafNodes = 0
    /// Histogram bins per feature; features with at most this many distinct values split exactly.
    public var maxBins = 256
    public var seed: UInt64 = 42

    public init() {}

    public var task: TreeTask { criterion.task }

    public func validate() throws(InvalidSetting) {
        guard maxDepth >= 0, maxDepth <= 1_000 else { throw InvalidSetting("max_depth must be 0 (unlimited) … 1000") }
        guard minSamplesSplit >= 2 else { throw InvalidSetting("min_samples_split must be ≥ 2") }
        guard minSamplesLeaf >= 1 else { throw InvalidSetting("min_samples_leaf must be ≥ 1") }
        guard maxLeafNodes == 0 || maxLeafNodes >= 2 else {
            throw InvalidSetting("max_leaf_nodes must be 0 (unlimited) or ≥ 2")
        }
        guard (2...256).contains(maxBins) else { throw InvalidSetting("max_bins must be 2 … 256") }
    }
}

/// A setting out of range, named in the message.
public struct InvalidSetting: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
