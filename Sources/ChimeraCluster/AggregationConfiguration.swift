public import ChimeraML
package import ChimeraWire

/// What an aggregation (bagging) fit needs, from a FitConfig whose zero fields mean "default".
public struct AggregationConfiguration: Sendable, Equatable, Codable {
    public var tree = TreeSettings()
    public var treesPerWorker = 1
    public var bootstrap = true

    public init() {}

    public var task: TreeTask { tree.task }

    package init(wire: Chimera_V1_FitConfig) throws(ConfigurationError) {
        self.init()
        let criterion = wire.criterion.lowercased()
        switch wire.model {
        case .unspecified:
            tree.criterion = SplitCriterion(rawValue: criterion.isEmpty ? "gini" : criterion) ?? .gini
        case .decisionTreeClassifier:
            tree.criterion = SplitCriterion(rawValue: criterion.isEmpty ? "gini" : criterion) ?? .gini
            guard tree.criterion != .squaredError else {
                throw ConfigurationError("criterion squared_error is for regression trees; use gini or entropy")
            }
        case .decisionTreeRegressor:
            tree.criterion = .squaredError
            guard criterion.isEmpty || criterion == "squared_error" else {
                throw ConfigurationError("a regression tree uses criterion squared_error, not \(criterion)")
            }
        default:
            throw ConfigurationError("model \(wire.model) is not a tree model (aggregation fits decision trees)")
        }
        guard criterion.isEmpty || SplitCriterion(rawValue: criterion) != nil else {
            throw ConfigurationError("criterion must be gini, entropy or squared_error; got \"\(wire.criterion)\"")
        }
        tree.maxDepth = Int(wire.maxDepth)
        if wire.minSamplesSplit != 0 { tree.minSamplesSplit = Int(wire.minSamplesSplit) }
        if wire.minSamplesLeaf != 0 { tree.minSamplesLeaf = Int(wire.minSamplesLeaf) }
        tree.maxLeafNodes = Int(wire.maxLeafNodes)
        if wire.seed != 0 { tree.seed = wire.seed }
        do {
            tree.maxFeatures = try MaxFeatures(parsing: wire.maxFeatures)
            try tree.validate()
        } catch {
            throw ConfigurationError(error.description)
        }
        if wire.treesPerWorker != 0 { treesPerWorker = Int(wire.treesPerWorker) }
        guard treesPerWorker <= 10_000 else { throw ConfigurationError("trees_per_worker must be 1…10,000") }
        bootstrap = !wire.noBootstrap
    }

    package var wire: Chimera_V1_FitConfig {
        var out = Chimera_V1_FitConfig()
        out.model = task == .regression ? .decisionTreeRegressor : .decisionTreeClassifier
        out.criterion = tree.criterion.rawValue
        out.maxDepth = UInt32(tree.maxDepth)
        out.minSamplesSplit = UInt32(tree.minSamplesSplit)
        out.minSamplesLeaf = UInt32(tree.minSamplesLeaf)
        out.maxLeafNodes = UInt32(tree.maxLeafNodes)
        out.maxFeatures = tree.maxFeatures.description
        out.seed = tree.seed
        out.treesPerWorker = UInt32(treesPerWorker)
        out.noBootstrap = !bootstrap
        return out
    }
}
