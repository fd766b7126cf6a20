import ChimeraCluster
import ChimeraML
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Testing

/// The fit vocabulary is the one definition of every setting: these tests take each entry from the
/// command line through the HTTP body and the wire message to the master's own configuration.
@Suite("fit vocabulary")
struct FitVocabularyTests {
    /// What the master made of a setting, read back from its configuration (or, for values the master
    /// resolves from the labels such as `auto`, from the wire).
    static let masterReaders: [String: @Sendable (Chimera_V1_FitConfig, FitMode) throws -> FitValue] = [
        "model": { wire, mode in
            if wire.model == .unspecified { return .text("auto") }
            if mode == .aggregation {
                return .text(
                    try AggregationConfiguration(wire: wire).task == .regression ? "tree_regressor" : "tree_classifier")
            }
            return .text(try TrainingConfiguration(wire: wire).model.rawValue)
        },
        "iterations": { wire, _ in .integer(try TrainingConfiguration(wire: wire).maxIterations) },
        "tolerance": { wire, _ in .number(try TrainingConfiguration(wire: wire).tolerance) },
        "penalty": { wire, _ in .text(try TrainingConfiguration(wire: wire).penalty.rawValue) },
        "alpha": { wire, _ in .number(try TrainingConfiguration(wire: wire).alpha) },
        "l1_ratio": { wire, _ in .number(try TrainingConfiguration(wire: wire).l1Ratio) },
        "schedule": { wire, _ in .text(try TrainingConfiguration(wire: wire).schedule.rawValue) },
        "eta0": { wire, _ in .number(try TrainingConfiguration(wire: wire).eta0) },
        "power_t": { wire, _ in .number(try TrainingConfiguration(wire: wire).powerT) },
        "momentum": { wire, _ in .number(try TrainingConfiguration(wire: wire).momentum) },
        "batch_size": { wire, _ in .integer(try TrainingConfiguration(wire: wire).batchSize) },
        "worker_mode": { wire, _ in .text(try TrainingConfiguration(wire: wire).workerMode.rawValue) },
        "local_steps": { wire, _ in .integer(try TrainingConfiguration(wire: wire).localSteps) },
        "staleness": { wire, _ in
            try TrainingConfiguration(wire: wire).staleness.map { .integer($0) } ?? .text("unbounded")
        },
        "unbounded_staleness": { wire, _ in .boolean(try TrainingConfiguration(wire: wire).staleness == nil) },
        "seed": { wire, mode in
            .integer(
                Int(
                    mode == .aggregation
                        ? try AggregationConfiguration(wire: wire).tree.seed
                        : try TrainingConfiguration(wire: wire).seed))
        },
        "raw_features": { wire, _ in .boolean(!(try TrainingConfiguration(wire: wire).standardize)) },
        "checkpoint_every": { wire, _ in .integer(try TrainingConfiguration(wire: wire).checkpointEvery) },
        "on_divergence": { wire, _ in .text(try TrainingConfiguration(wire: wire).onDivergence.rawValue) },
        "max_backoffs": { wire, _ in .integer(try TrainingConfiguration(wire: wire).maxBackoffs) },
        "optimizer": { wire, _ in .text(try TrainingConfiguration(wire: wire).optimizer.rawValue) },
        "beta1": { wire, _ in .number(try TrainingConfiguration(wire: wire).beta1) },
        "beta2": { wire, _ in .number(try TrainingConfiguration(wire: wire).beta2) },
        "weight_decay": { wire, _ in .number(try TrainingConfiguration(wire: wire).weightDecay) },
        "warmup_steps": { wire, _ in .integer(try TrainingConfiguration(wire: wire).warmupSteps) },
        "hidden": { wire, _ in
            .text(try TrainingConfiguration(wire: wire).hidden.map(String.init).joined(separator: ","))
        },
        "activation": { wire, _ in .text(try TrainingConfiguration(wire: wire).activation.rawValue) },
        "algorithm": { wire, _ in .text(try TrainingConfiguration(wire: wire).algorithm.rawValue) },
        "block_momentum": { wire, _ in .number(try TrainingConfiguration(wire: wire).blockMomentum) },
        "block_learning_rate": { wire, _ in .number(try TrainingConfiguration(wire: wire).blockLearningRate) },
        "rho": { wire, _ in .number(try TrainingConfiguration(wire: wire).rho) },
        "wire_dtype": { wire, _ in .text(try TrainingConfiguration(wire: wire).wireDType.rawValue) },
        "staleness_aware": { wire, _ in .boolean(try TrainingConfiguration(wire: wire).stalenessAware) },
        "parallelism": { wire, _ in
            // A pipeline splits an mlp, feature blocks a linear model (full batch).
            var fit = wire
            fit.model = wire.parallelism == "features" ? .logisticRegression : .mlp
            return .text(try TrainingConfiguration(wire: fit).parallelism.rawValue)
        },
        "stages": { wire, _ in
            let stages = try TrainingConfiguration(wire: pipelined(wire)).stages
            return stages == 0 ? .text("auto") : .integer(stages)
        },
        "stage_layers": { wire, _ in
            .text(try TrainingConfiguration(wire: pipelined(wire)).stageLayers.map(String.init).joined(separator: ","))
        },
        "micro_batches": { wire, _ in .integer(try TrainingConfiguration(wire: pipelined(wire)).microBatches) },
        "schedule_pipeline": { wire, _ in
            .text(try TrainingConfiguration(wire: pipelined(wire)).pipelineSchedule.rawValue)
        },
        "replicas": { wire, _ in .integer(try TrainingConfiguration(wire: pipelined(wire)).replicas) },
        "servers": { wire, _ in
            let servers = try TrainingConfiguration(wire: wire).servers
            return servers.map { .integer($0) } ?? .text("auto")
        },
        "trees_per_worker": { wire, _ in .integer(try AggregationConfiguration(wire: wire).treesPerWorker) },
        "criterion": { wire, _ in
            wire.criterion.isEmpty
                ? .text("auto") : .text(try AggregationConfiguration(wire: wire).tree.criterion.rawValue)
        },
        "max_depth": { wire, _ in .integer(try AggregationConfiguration(wire: wire).tree.maxDepth) },
        "min_samples_split": { wire, _ in .integer(try AggregationConfiguration(wire: wire).tree.minSamplesSplit) },
        "min_samples_leaf": { wire, _ in .integer(try AggregationConfiguration(wire: wire).tree.minSamplesLeaf) },
        "max_features": { wire, _ in .text(try AggregationConfiguration(wire: wire).tree.maxFeatures.description) },
        "max_leaf_nodes": { wire, _ in .integer(try AggregationConfiguration(wire: wire).tree.maxLeafNodes) },
        "bootstrap": { wire, _ in .boolean(try AggregationConfiguration(wire: wire).bootstrap) },
    ]

    /// The pipeline settings are checked against a pipeline fit of a network with the layers they name.
    static func pipelined(_ wire: Chimera_V1_FitConfig) -> Chimera_V1_FitConfig {
        var pipeline = wire
        pipeline.model = .mlp
        pipeline.parallelism = "pipeline"
        let layers = Int(wire.stageLayers.reduce(0, +))
        pipeline.hidden = Array(repeating: 4, count: layers > 1 ? layers - 1 : 6)
        return pipeline
    }

    /// Values other than the default that exercise a setting: every choice, both kinds of staleness.
    static func samples(_ setting: FitSetting, mode: FitMode) -> [FitValue] {
        switch setting.type {
        case .integer(let range):
            return [5, 2, 1, 0].filter { range.contains($0) && .integer($0) != setting.defaultValue }.prefix(1).map {
                .integer($0)
            }
        case .number(let range, _, _):
            return [0.5, 2.0].filter { range.contains($0) && .number($0) != setting.defaultValue }.prefix(1).map {
                .number($0)
            }
        case .boolean:
            return [.boolean(!(setting.defaultValue.boolean ?? false))]
        case .choice(let names, _):
            return names.map { .text($0) }.filter { value in setting.checkModeAllows(value, mode) }
        case .text:
            return [.text("sqrt"), .text("0.5"), .text("3")]
        case .integerOrWord(_, let words, _):
            return [.integer(3)] + words.map { .text($0) }
        case .integerList:
            return [.text("16"), .text("32,8,4")]
        }
    }

    @Test("every setting round-trips: command line → HTTP body → gateway → wire → master configuration")
    func roundTrip() throws {
        var checked = 0
        for mode in FitMode.allCases {
            for setting in FitVocabulary.all where setting.modes.contains(mode) {
                let reader = try #require(
                    Self.masterReaders[setting.name], "no master reader for \(setting.name): add one")
                for value in Self.samples(setting, mode: mode) {
                    // The command line `chimera http fit` is given …
                    var words = ["\(setting.flag)", "\(value)"]
                    // Nesterov momentum needs a momentum (the master says so otherwise).
                    if setting.name == "optimizer", value == .text("nesterov") { words += ["--momentum", "0.5"] }
                    let parsed = try FitSettings.parse(arguments: words)
                    // … becomes the JSON body it sends, which the gateway parses …
                    let json = try JSONSerialization.data(withJSONObject: parsed.body)
                    let received = try FitSettings.parse(json: json)
                    #expect(received == parsed, "\(setting.name) = \(value)")
                    // … into the wire message the master turns into its configuration.
                    let wire = try received.wire(mode: mode)
                    let seen = try reader(wire, mode)
                    #expect(seen == value, "\(setting.name): sent \(value), the master has \(seen)")
                    checked += 1
                }
                // The default, sent as nothing at all, is the master's default too.
                let seen = try reader(try FitSettings().wire(mode: mode), mode)
                #expect(
                    seen == setting.defaultValue,
                    "\(setting.name): default \(setting.defaultValue), the master has \(seen)")
            }
        }
        #expect(checked > FitVocabulary.all.count)
        #expect(Set(Self.masterReaders.keys) == Set(FitVocabulary.all.map(\.name)))
        // An empty fit is the master's default configuration, field for field.
        #expect(try TrainingConfiguration(wire: FitSettings().wire(mode: .parameterServer)) == TrainingConfiguration())
        #expect(
            try AggregationConfiguration(wire: FitSettings().wire(mode: .aggregation)) == AggregationConfiguration())
    }

    @Test("bad settings are named errors: unknown (with a suggestion), wrong type, out of range, other mode")
    func errors() throws {
        func jsonError(_ body: String) -> FitSettingError? {
            do {
                _ = try FitSettings.parse(json: Data(body.utf8))
                return nil
            } catch { return error }
        }
        #expect(
            jsonError("{\"iterationz\": 5}")?.description == "unknown fit setting iterationz (did you mean iterations?)"
        )
        #expect(
            jsonError("{\"iterations\": \"5\"}")?.description
                == "iterations must be an integer in 1…10000000, got the text \"5\"")
        #expect(jsonError("{\"raw_features\": 1}")?.kind == .wrongType)
        #expect(jsonError("{\"eta0\": null}")?.description == "eta0 must be a number in (0, 1e+38], got null")
        #expect(jsonError("{\"momentum\": 1}")?.kind == .outOfRange)
        #expect(jsonError("{\"staleness\": -1}")?.kind == .outOfRange)
        #expect(jsonError("{\"penalty\": \"l3\"}")?.description.contains("one of none, l2, l1, elasticnet") == true)
        #expect(jsonError("{\"max_features\": \"most\"}")?.description.hasPrefix("max_features: ") == true)
        // A network's layers: a JSON list or "256,256"; a layer of 0 units is out of range, named.
        #expect(try FitSettings.parse(json: Data("{\"hidden\": [256, 128]}".utf8))["hidden"] == .text("256,128"))
        #expect(try FitSettings.parse(arguments: ["--hidden", "64, 32"])["hidden"] == .text("64,32"))
        #expect(
            jsonError("{\"hidden\": [64, 0]}")?.description
                == "hidden must be 1…64 integers in 1…65536, such as 256,256, got 0")
        #expect(jsonError("{\"hidden\": \"64,x\"}")?.kind == .wrongType)
        #expect(jsonError("{\"hidden\": []}")?.kind == .outOfRange)
        #expect(jsonError("[1]")?.kind == .malformed)
        #expect(jsonError("{oops")?.kind == .malformed)
        #expect(jsonError("") == nil)
        #expect(
            try FitSettings.parse(json: Data("{\"iterations\": 5.0, \"staleness\": \"unbounded\"}".utf8))["iterations"]
                == .integer(5))

        let trees = try FitSettings.parse(json: Data("{\"max_depth\": 3}".utf8))
        #expect(throws: FitSettingError.self) { try trees.wire(mode: .parameterServer) }
        let linear = try FitSettings.parse(arguments: ["--model", "softmax"])
        #expect(throws: FitSettingError.self) { try linear.wire(mode: .aggregation) }
        do {
            try trees.check(mode: .parameterServer, spelling: .flag)
        } catch {
            #expect(
                error.description
                    == "--max-depth is a setting of bagging (aggregation) fits; this master runs parameter-server fits")
        }

        // Command-line forms: --name value, --name=value, --flag, --no-flag.
        let words = try FitSettings.parse(arguments: [
            "--eta0=0.5", "--raw-features", "--no-bootstrap", "--staleness", "inf",
        ])
        #expect(
            words["eta0"] == .number(0.5) && words["raw_features"] == .boolean(true)
                && words["bootstrap"] == .boolean(false))
        #expect(words["staleness"] == .text("unbounded"))
        #expect(try FitSettings.parse(arguments: words.arguments) == words)
        #expect(throws: FitSettingError.self) { try FitSettings.parse(arguments: ["--eta0"]) }
        #expect(throws: FitSettingError.self) { try FitSettings.parse(arguments: ["5"]) }
    }

    @Test("README's settings tables are the vocabulary's")
    func readmeTables() throws {
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        for mode in FitMode.allCases {
            let table = FitVocabulary.markdownTable(mode: mode)
            #expect(readme.contains(table), "README.md lacks the \(mode.rawValue) table; it is now:\n\(table)")
        }
    }
}

extension FitSetting {
    func checkModeAllows(_ value: FitValue, _ mode: FitMode) -> Bool {
        var settings = FitSettings()
        guard (try? settings.set(name, value: value)) != nil else { return false }
        return (try? settings.check(mode: mode, spelling: .field)) != nil
    }
}
