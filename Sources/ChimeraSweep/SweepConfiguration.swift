public import ChimeraCluster
public import ChimeraML
import Foundation
import Yams

/// A tuning sweep: a grid of runs that differ only in what the grid varies. Every run trains from the
/// same initial weights (zeros, or a network's seeded initialisation) on the same partitions (written
/// once, from a seed).
public struct SweepConfiguration: Sendable, Equatable {
    public struct StragglerSetting: Sendable, Equatable {
        public var name: String
        /// 1-based worker indices that straggle (nil: all).
        public var workers: [Int]?
        public var straggler: Straggler
    }

    public var name = "sweep"
    public var data = SyntheticData.Specification()
    /// A folder in the Chimera layout to use instead of synthetic data (needs `test/`).
    public var dataPath: String?
    /// The held-out data's folder (X_test.csv, y_test.csv); default `<data.path>/test`.
    public var testPath: String?
    public var testFraction = 0.2
    /// Fixed fit settings of every run (the vocabulary's, parameter-server mode); the grid sets eta0
    /// (`learning_rates`) and staleness per run.
    public var fit = SweepConfiguration.defaultFit
    public var model: ModelKind { fit["model"]?.text.flatMap(ModelKind.init(rawValue:)) ?? .logisticRegression }
    public var iterations: Int { fit["iterations"]?.integer ?? 200 }
    public var learningRates: [Double] = [0.5]
    /// More grid axes: any parameter-server setting with its values (`grid: {algorithm: [ssgd, ma],
    /// wire_dtype: [float32, bfloat16]}`), in the order given.
    public var grid: [(name: String, values: [FitValue])] = []
    /// nil stands for unbounded.
    public var staleness: [Int?] = [0, 1, 2, 4, 8, nil]
    public var workers: [Int] = [4]
    public var repeats = 1
    public var targetLoss: Double?
    /// Simulated compute per iteration on every worker, milliseconds.
    public var delayMilliseconds = 2
    public var stragglers: [StragglerSetting] = [StragglerSetting(name: "none", workers: nil, straggler: Straggler())]
    public var seed: UInt64 = 42
    /// An existing master (workers endpoint, control endpoint) instead of a local cluster per run.
    public var masterWorkersEndpoint: String?
    public var masterControlEndpoint: String?

    public init() {}

    public static func == (a: SweepConfiguration, b: SweepConfiguration) -> Bool {
        a.name == b.name && a.data == b.data && a.dataPath == b.dataPath && a.testPath == b.testPath
            && a.testFraction == b.testFraction && a.fit == b.fit && a.learningRates == b.learningRates
            && a.grid.map(\.name) == b.grid.map(\.name) && a.grid.map(\.values) == b.grid.map(\.values)
            && a.staleness == b.staleness && a.workers == b.workers && a.repeats == b.repeats
            && a.targetLoss == b.targetLoss && a.delayMilliseconds == b.delayMilliseconds
            && a.stragglers == b.stragglers && a.seed == b.seed && a.masterWorkersEndpoint == b.masterWorkersEndpoint
            && a.masterControlEndpoint == b.masterControlEndpoint
    }

    static var defaultFit: FitSettings {
        var fit = FitSettings()
        try! fit.set("model", value: .text("logistic"))
        return fit
    }

    /// The sweep's fixed settings with one grid point's learning rate and bound (and the sweep's seed
    /// unless the fit block names one).
    public func fitSettings(learningRate: Double, staleness: Int?, grid point: [String: FitValue] = [:])
        throws(FitSettingError) -> FitSettings
    {
        var settings = fit
        for (name, value) in point { try settings.set(name, value: value) }
        try settings.set("eta0", value: .number(learningRate))
        try settings.set("staleness", value: staleness.map { .integer($0) } ?? .text("unbounded"))
        if settings.given["seed"] == nil, seed >= 1 { try settings.set("seed", value: .integer(Int(clamping: seed))) }
        return settings
    }

    /// Parses YAML; every error names the offending field (e.g. `stragglers[1].pause_probability`).
    public static func parse(yaml text: String) throws(SweepConfigurationError) -> SweepConfiguration {
        let root: Any?
        do {
            root = try Yams.load(yaml: text)
        } catch {
            throw SweepConfigurationError(field: "(document)", "not valid YAML: \(error)")
        }
        guard let map = root as? [String: Any] else {
            throw SweepConfigurationError(field: "(document)", "must be a mapping of settings")
        }
        var reader = FieldReader(map, path: "")
        var config = SweepConfiguration()
        config.name = try reader.string("name") ?? config.name
        if let data = try reader.map("data") {
            var d = FieldReader(data, path: "data")
            config.dataPath = try d.string("path")
            config.testPath = try d.string("test")
            if config.testPath != nil, config.dataPath == nil {
                throw SweepConfigurationError(field: "data.test", "needs data.path (the workers' folders)")
            }
            if let task = try d.string("task") {
                guard let value = SyntheticData.Task(rawValue: task) else {
                    throw SweepConfigurationError(
                        field: "data.task", "must be classification or regression, not \(task)")
                }
                config.data.task = value
            }
            config.data.rows = try d.int("rows", min: 10) ?? config.data.rows
            config.data.features = try d.int("features", min: 1) ?? config.data.features
            config.data.classes = try d.int("classes", min: 2) ?? config.data.classes
            config.data.informative = try d.int("informative", min: 1) ?? config.data.informative
            config.data.noise = try d.double("noise", min: 0) ?? config.data.noise
            config.data.seed = try d.int("seed", min: 0).map(UInt64.init) ?? config.data.seed
            config.testFraction = try d.double("test_fraction", min: 0.01, max: 0.9) ?? config.testFraction
            try d.rejectUnknown()
        }
        // Fit settings: a `fit:` block (any parameter-server setting), and `model`/`iterations` at the top.
        for key in ["model", "iterations"] {
            if let value = try reader.value(key) { try config.setFit(key, value, field: key) }
        }
        if let block = try reader.map("fit") {
            for key in block.keys.sorted() {
                if ["eta0", "staleness", "unbounded_staleness"].contains(key) {
                    throw SweepConfigurationError(field: "fit.\(key)", "is set by the grid (learning_rates, staleness)")
                }
                try config.setFit(key, block[key]!, field: "fit.\(key)")
            }
        }
        config.learningRates = try reader.doubles("learning_rates", min: 1e-12) ?? config.learningRates
        if let block = try reader.map("grid") {
            for key in block.keys.sorted() {
                let field = "grid.\(key)"
                if ["eta0", "staleness", "unbounded_staleness"].contains(key) {
                    throw SweepConfigurationError(field: field, "has its own list (learning_rates, staleness)")
                }
                if config.fit.given[key] != nil {
                    throw SweepConfigurationError(field: field, "is also fixed in fit: give it in one place")
                }
                guard let list = block[key] as? [Any], !list.isEmpty else {
                    throw SweepConfigurationError(field: field, "must be a list of values")
                }
                var values: [FitValue] = []
                for (index, item) in list.enumerated() {
                    var probe = config
                    try probe.setFit(key, item, field: "\(field)[\(index)]")
                    values.append(probe.fit.given[key]!)
                }
                config.grid.append((key, values))
            }
        }
        if let values = try reader.list("staleness") {
            config.staleness = try values.enumerated().map { index, value throws(SweepConfigurationError) -> Int? in
                if let text = value as? String, ["unbounded", "inf", "async"].contains(text.lowercased()) {
                    return nil
                }
                guard let number = value as? Int, number >= 0 else {
                    throw SweepConfigurationError(
                        field: "staleness[\(index)]", "must be a number ≥ 0 or \"unbounded\", not \(value)")
                }
                return number
            }
        }
        config.workers = try reader.ints("workers", min: 1) ?? config.workers
        config.repeats = try reader.int("repeats", min: 1) ?? config.repeats
        config.targetLoss = try reader.double("target_loss", min: 0)
        config.delayMilliseconds = try reader.int("delay_ms", min: 0) ?? config.delayMilliseconds
        config.seed = try reader.int("seed", min: 0).map(UInt64.init) ?? config.seed
        if let master = try reader.map("master") {
            var m = FieldReader(master, path: "master")
            config.masterWorkersEndpoint = try m.string("workers")
            config.masterControlEndpoint = try m.string("control")
            guard config.masterWorkersEndpoint != nil, config.masterControlEndpoint != nil else {
                throw SweepConfigurationError(field: "master", "needs both workers and control endpoints")
            }
            try m.rejectUnknown()
        }
        if let list = try reader.list("stragglers") {
            config.stragglers = try list.enumerated().map { index, item throws(SweepConfigurationError) in
                let path = "stragglers[\(index)]"
                guard let map = item as? [String: Any] else {
                    throw SweepConfigurationError(field: path, "must be a mapping")
                }
                var s = FieldReader(map, path: path)
                var setting = StragglerSetting(
                    name: try s.string("name") ?? "stragglers-\(index)", workers: nil, straggler: Straggler())
                if let workers = try s.value("workers") {
                    if let text = workers as? String, text == "all" {
                        setting.workers = nil
                    } else if let numbers = workers as? [Int], numbers.allSatisfy({ $0 >= 1 }) {
                        setting.workers = numbers
                    } else {
                        throw SweepConfigurationError(
                            field: "\(path).workers", "must be \"all\" or a list of worker numbers ≥ 1")
                    }
                }
                setting.straggler.slowdown = try s.double("slowdown", min: 1) ?? 1
                setting.straggler.pauseProbability = try s.double("pause_probability", min: 0, max: 1) ?? 0
                setting.straggler.pauseMilliseconds = try s.double("pause_ms", min: 0) ?? 0
                setting.straggler.pauseEvery = try s.int("pause_every", min: 0) ?? 0
                setting.straggler.seed = try s.int("seed", min: 0).map(UInt64.init) ?? UInt64(index + 1)
                try s.rejectUnknown()
                return setting
            }
        }
        try reader.rejectUnknown()
        if config.masterControlEndpoint != nil, config.dataPath == nil {
            throw SweepConfigurationError(
                field: "master",
                "a running cluster's data is its own: set data.path to its folder (with test/) for the held-out loss")
        }
        guard !config.staleness.isEmpty else {
            throw SweepConfigurationError(field: "staleness", "needs at least one bound")
        }
        guard !config.stragglers.isEmpty else {
            throw SweepConfigurationError(field: "stragglers", "needs at least one setting")
        }
        return config
    }
}

extension SweepConfiguration {
    mutating func setFit(_ key: String, _ value: Any, field: String) throws(SweepConfigurationError) {
        do {
            try fit.set(key, FitInput(document: value), spelling: .field)
            // A sweep tunes parameter-server fits: a bagging setting is an error here.
            var single = FitSettings()
            try single.set(key, value: fit.given[key]!)
            try single.check(mode: .parameterServer, spelling: .field)
        } catch {
            throw SweepConfigurationError(field: field, error.description)
        }
    }
}

public struct SweepConfigurationError: Error, CustomStringConvertible, Sendable {
    public let field: String
    public let problem: String
    public init(field: String, _ problem: String) {
        self.field = field
        self.problem = problem
    }
    public var description: String { "sweep configuration: \(field): \(problem)" }
}

/// Reads typed fields from a YAML mapping, remembering which were used so unknown ones are reported.
struct FieldReader {
    private let map: [String: Any]
    private let path: String
    private var used: Set<String> = []

    init(_ map: [String: Any], path: String) {
        self.map = map
        self.path = path
    }

    private func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    mutating func value(_ key: String) throws(SweepConfigurationError) -> Any? {
        used.insert(key)
        return map[key]
    }

    mutating func string(_ key: String) throws(SweepConfigurationError) -> String? {
        guard let value = try value(key) else { return nil }
        guard let text = value as? String else {
            throw SweepConfigurationError(field: name(key), "must be text, not \(value)")
        }
        return text
    }

    mutating func int(_ key: String, min: Int) throws(SweepConfigurationError) -> Int? {
        guard let value = try value(key) else { return nil }
        guard let number = value as? Int else {
            throw SweepConfigurationError(field: name(key), "must be a whole number, not \(value)")
        }
        guard number >= min else { throw SweepConfigurationError(field: name(key), "must be ≥ \(min), not \(number)") }
        return number
    }

    mutating func double(_ key: String, min: Double, max: Double = .infinity) throws(SweepConfigurationError) -> Double?
    {
        guard let value = try value(key) else { return nil }
        let number: Double
        if let d = value as? Double {
            number = d
        } else if let i = value as? Int {
            number = Double(i)
        } else {
            throw SweepConfigurationError(field: name(key), "must be a number, not \(value)")
        }
        guard number >= min, number <= max, number.isFinite else {
            throw SweepConfigurationError(field: name(key), "must be in [\(min), \(max)], not \(number)")
        }
        return number
    }

    mutating func map(_ key: String) throws(SweepConfigurationError) -> [String: Any]? {
        guard let value = try value(key) else { return nil }
        guard let map = value as? [String: Any] else {
            throw SweepConfigurationError(field: name(key), "must be a mapping")
        }
        return map
    }

    mutating func list(_ key: String) throws(SweepConfigurationError) -> [Any]? {
        guard let value = try value(key) else { return nil }
        if let list = value as? [Any] { return list }
        return [value]  // a single value stands for a one-element list
    }

    mutating func ints(_ key: String, min: Int) throws(SweepConfigurationError) -> [Int]? {
        guard let list = try list(key) else { return nil }
        return try list.enumerated().map { index, value throws(SweepConfigurationError) in
            guard let number = value as? Int, number >= min else {
                throw SweepConfigurationError(
                    field: "\(name(key))[\(index)]", "must be a whole number ≥ \(min), not \(value)")
            }
            return number
        }
    }

    mutating func doubles(_ key: String, min: Double) throws(SweepConfigurationError) -> [Double]? {
        guard let list = try list(key) else { return nil }
        return try list.enumerated().map { index, value throws(SweepConfigurationError) in
            let number = (value as? Double) ?? (value as? Int).map(Double.init)
            guard let number, number >= min else {
                throw SweepConfigurationError(
                    field: "\(name(key))[\(index)]", "must be a number ≥ \(min), not \(value)")
            }
            return number
        }
    }

    func rejectUnknown() throws(SweepConfigurationError) {
        if let unknown = map.keys.sorted().first(where: { !used.contains($0) }) {
            throw SweepConfigurationError(field: name(unknown), "is not a known setting")
        }
    }
}
