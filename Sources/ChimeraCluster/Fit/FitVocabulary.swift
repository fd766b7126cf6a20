import ChimeraML
import ChimeraWire

/// Every fit setting, defined once. `chimera fit`/`chimera http fit` flags, the HTTP fit body, the sweep
/// YAML's `fit:` block, the FitConfig wire message, `/openapi.json` and README's tables all come from
/// this list; a test round-trips each entry from the command line through HTTP and the wire to the
/// master's configuration.
public enum FitVocabulary {
    static let ps: Set<FitMode> = [.parameterServer]
    static let trees: Set<FitMode> = [.aggregation]
    static let both: Set<FitMode> = [.parameterServer, .aggregation]

    static let parameterServerModels = ["linear", "logistic", "softmax", "svm", "mlp"]
    static let treeModels = ["tree_classifier", "tree_regressor"]

    public static let all: [FitSetting] = [
        FitSetting(
            "model",
            .choice(
                ["auto"] + parameterServerModels + treeModels,
                aliases: [
                    "tree": "tree_classifier", "decision_tree_classifier": "tree_classifier",
                    "decision_tree_regressor": "tree_regressor",
                ]),
            default: .text("auto"), modes: both,
            help:
                "linear (squared loss), logistic (log loss), softmax (multinomial), svm (hinge), mlp (a neural network: hidden, activation; its output follows the labels); tree_classifier or tree_regressor for bagging; auto lets the master pick from the workers' labels (two values: logistic or a classification tree; up to 50 whole numbers: softmax or a classification tree; else linear or a regression tree)",
            checkMode: { value, mode in
                let name = value.text ?? ""
                if mode == .parameterServer, treeModels.contains(name) {
                    return
                        "\(name) is a bagging model; this master trains parameter-server models (linear, logistic, softmax, svm, mlp)"
                }
                if mode == .aggregation, parameterServerModels.contains(name) {
                    return
                        "\(name) is a parameter-server model; this master fits bagged trees (tree_classifier, tree_regressor)"
                }
                return nil
            },
            apply: { value, wire in
                wire.model =
                    switch value.text {
                    case "linear": .linearRegression
                    case "logistic": .logisticRegression
                    case "softmax": .softmax
                    case "svm": .linearSvm
                    case "mlp": .mlp
                    case "tree_classifier": .decisionTreeClassifier
                    case "tree_regressor": .decisionTreeRegressor
                    default: .unspecified
                    }
            }),
        FitSetting(
            "hidden",
            .integerList(1...TrainingConfiguration.maxLayerWidth, count: 1...TrainingConfiguration.maxHiddenLayers),
            default: .text("100"), modes: ps,
            help: "mlp: the hidden layers' widths, input side first (256,256: two layers of 256)",
            apply: { value, wire in
                wire.hidden = (value.text ?? "100").split(separator: ",").compactMap { UInt32($0) }
            }),
        FitSetting(
            "activation", .choice(["relu", "tanh"]), default: .text("relu"), modes: ps,
            help: "mlp: the hidden layers' non-linearity", apply: { $1.activation = $0.text ?? "relu" }),
        FitSetting(
            "iterations", .integer(1...10_000_000), default: .integer(200), modes: ps,
            help: "stop after this many iterations", apply: { $1.maxIterations = UInt64($0.integer ?? 200) }),
        FitSetting(
            "tolerance", .number(0...Double.greatestFiniteMagnitude), default: .number(0), modes: ps,
            help: "stop when the loss improves by less than this over 5 iterations (0: never)",
            apply: { $1.tolerance = $0.number ?? 0 }),
        FitSetting(
            "penalty", .choice(["none", "l2", "l1", "elasticnet"], aliases: ["elastic_net": "elasticnet"]),
            default: .text("l2"), modes: ps, help: "the regulariser, applied once per update by the master",
            apply: { value, wire in
                wire.penalty =
                    switch value.text {
                    case "none": .none
                    case "l1": .l1
                    case "elasticnet": .elasticNet
                    default: .l2
                    }
            }),
        FitSetting(
            "alpha", .number(0...Double.greatestFiniteMagnitude), default: .number(1e-4), modes: ps,
            help: "penalty strength", apply: { $1.alpha = $0.number ?? 1e-4 }),
        FitSetting(
            "l1_ratio", .number(0...1), default: .number(0.15), modes: ps, help: "elastic-net mix (1: all L1)",
            apply: { $1.l1Ratio = $0.number ?? 0.15 }),
        FitSetting(
            "schedule", .choice(["constant", "invscaling", "optimal"]), default: .text("constant"), modes: ps,
            help: "learning rate: constant, invscaling (eta0 / t^power_t) or optimal (scikit-learn's)",
            apply: { value, wire in
                wire.schedule =
                    switch value.text {
                    case "invscaling": .learningRateInverseScaling
                    case "optimal": .learningRateOptimal
                    default: .learningRateConstant
                    }
            }),
        FitSetting(
            "eta0", .number(0...1e38, above: true), default: .number(0.1), modes: ps,
            help: "initial learning rate (the master steps in float32)", apply: { $1.eta0 = $0.number ?? 0.1 }),
        FitSetting(
            "power_t", .number(-1e6...1e6), default: .number(0.25), modes: ps, help: "invscaling exponent",
            apply: { $1.powerT = $0.number ?? 0.25 }),
        FitSetting(
            "momentum", .number(0...1, below: true), default: .number(0), modes: ps, help: "master-side SGD momentum",
            apply: { $1.momentum = $0.number ?? 0 }),
        FitSetting(
            "batch_size", .integer(0...Int.max), default: .integer(0), modes: ps,
            help: "rows per mini-batch (0: the whole shard, i.e. full-batch gradient descent)",
            apply: { $1.batchSize = UInt64($0.integer ?? 0) }),
        FitSetting(
            "worker_mode", .choice(["gradient", "local-sgd"], aliases: ["local_sgd": "local-sgd"]),
            default: .text("gradient"),
            modes: ps,
            help: "gradient, or local-sgd: local SGD steps per iteration, pushing the weight delta (model averaging)",
            apply: { $1.workerMode = $0.text == "local-sgd" ? .localSgd : .gradient }),
        FitSetting(
            "local_steps", .integer(1...1_000_000), default: .integer(1), modes: ps,
            help: "local SGD steps per iteration (ma, bmuf; easgd's τ)",
            apply: { $1.localSteps = UInt32($0.integer ?? 1) }),
        FitSetting(
            "algorithm", .choice(Algorithm.allCases.map(\.rawValue)), default: .text("ssgd"), modes: ps,
            help:
                "ssgd (gradients averaged, one step per round), ma (model averaging every local_steps), bmuf (block momentum and block learning rate on the averaged delta), easgd (elastic averaging, rho), asgd (asynchronous: unbounded staleness unless a bound is given); README lists the formulas",
            apply: { $1.algorithm = $0.text ?? "ssgd" }),
        FitSetting(
            "block_momentum", .number(0...1, below: true), default: .number(0.9), modes: ps,
            help: "bmuf: block momentum μ (Δ ← μΔ + ζG; workers start from W + μΔ)",
            apply: { $1.blockMomentum = $0.number ?? 0.9 }),
        FitSetting(
            "block_learning_rate", .number(0...1e6, above: true), default: .number(1), modes: ps,
            help: "bmuf: block learning rate ζ", apply: { $1.blockLearningRate = $0.number ?? 1 }),
        FitSetting(
            "rho", .number(0...1e6), default: .number(1), modes: ps,
            help: "easgd: elastic force ρ; each model moves eta0·ρ of the way toward the other per round",
            apply: { $1.rho = $0.number ?? 1 }),
        FitSetting(
            "wire_dtype", .choice(WireDType.allCases.map(\.rawValue)), default: .text("float32"), modes: ps,
            help:
                "pushes and weights as float32, bfloat16 or float16 (half the bytes; each worker carries its rounding error into its next push)",
            apply: { $1.wireDtype = $0.text ?? "float32" }),
        FitSetting(
            "staleness_aware", .boolean, default: .boolean(false), modes: ps,
            help: "asynchronous pushes: divide the step by the push's staleness τ (updates since its pull)",
            apply: { $1.stalenessAware = $0.boolean ?? false }),
        FitSetting(
            "staleness",
            .integerOrWord(
                0...1_000_000_000, words: ["unbounded"], aliases: ["inf": "unbounded", "async": "unbounded"]),
            default: .integer(0), modes: ps, help: "SSP staleness bound s (0 = BSP; unbounded = asynchronous)",
            apply: { value, wire in
                if let bound = value.integer {
                    wire.staleness = UInt64(bound)
                    wire.unboundedStaleness = false
                } else {
                    wire.staleness = 0
                    wire.unboundedStaleness = true
                }
            }),
        FitSetting(
            "unbounded_staleness", .boolean, default: .boolean(false), modes: ps,
            help: "true: asynchronous, the same as staleness unbounded (kept for older clients)",
            apply: { value, wire in if value.boolean == true { wire.unboundedStaleness = true } }),
        FitSetting(
            "seed", .integer(1...Int.max), default: .integer(42), modes: both,
            help: "mini-batch sampling; for bagging, the bootstraps and feature draws",
            apply: { $1.seed = UInt64($0.integer ?? 42) }),
        FitSetting(
            "raw_features", .boolean, default: .boolean(false), modes: ps,
            help: "skip global standardisation (mean and variance gathered from the workers' hellos)",
            apply: { $1.rawFeatures = $0.boolean ?? false }),
        FitSetting(
            "checkpoint_every", .integer(0...10_000_000), default: .integer(0), modes: ps,
            help:
                "write checkpoint.json every K iterations (0: only at the end; master --resume resumes the job from it)",
            apply: { $1.checkpointEvery = UInt32($0.integer ?? 0) }),
        FitSetting(
            "on_divergence", .choice(["fail", "backoff"]), default: .text("fail"), modes: ps,
            help:
                "a non-finite or exploding loss, or overflowing weights: fail ends the fit; backoff goes back to the best weights with half the step",
            apply: { $1.onDivergence = $0.text == "backoff" ? .backoff : .fail }),
        FitSetting(
            "max_backoffs", .integer(0...100), default: .integer(3), modes: ps,
            help: "backoffs before a diverging fit fails (with on_divergence backoff)",
            apply: { $1.maxBackoffs = UInt32($0.integer ?? 3) }),
        FitSetting(
            "optimizer", .choice(["sgd", "nesterov", "adam", "adamw"]), default: .text("sgd"), modes: ps,
            help:
                "the master's update rule: sgd (heavy-ball momentum with momentum > 0), nesterov (needs momentum > 0), adam, adamw",
            apply: { $1.optimizer = $0.text ?? "sgd" }),
        FitSetting(
            "beta1", .number(0...1, above: true, below: true), default: .number(0.9), modes: ps,
            help: "adam/adamw: decay of the first moment", apply: { $1.beta1 = $0.number ?? 0.9 }),
        FitSetting(
            "beta2", .number(0...1, above: true, below: true), default: .number(0.999), modes: ps,
            help: "adam/adamw: decay of the second moment", apply: { $1.beta2 = $0.number ?? 0.999 }),
        FitSetting(
            "weight_decay", .number(0...Double.greatestFiniteMagnitude), default: .number(0), modes: ps,
            help: "λ·w added to the gradient (sgd, nesterov, adam) or decoupled from it (adamw), on every weight",
            apply: { $1.weightDecay = $0.number ?? 0 }),
        FitSetting(
            "warmup_steps", .integer(0...10_000_000), default: .integer(0), modes: ps,
            help: "updates over which the step ramps up linearly to the schedule's (0: none)",
            apply: { $1.warmupSteps = UInt32($0.integer ?? 0) }),
        // Model parallelism.
        FitSetting(
            "parallelism", .choice(Parallelism.allCases.map(\.rawValue)), default: .text("data"), modes: ps,
            help:
                "data (every worker the whole model on its rows), features (a linear model's columns split over workers that hold every row: chimera data split-columns) or pipeline (mlp: the layers split over workers that stream activations to each other; README \"Pipeline parallelism\")",
            apply: { $1.parallelism = $0.text == "data" ? "" : ($0.text ?? "") }),
        FitSetting(
            "stages", .integerOrWord(1...(TrainingConfiguration.maxHiddenLayers + 1), words: ["auto"]),
            default: .text("auto"), modes: ps,
            help:
                "pipeline: stages K (auto: as many as the ready workers / replicas allow, at most the layers); layers are balanced by parameters",
            apply: { $1.stages = UInt32($0.integer ?? 0) }),
        FitSetting(
            "stage_layers",
            .integerList(
                1...(TrainingConfiguration.maxHiddenLayers + 1), count: 1...(TrainingConfiguration.maxHiddenLayers + 1)),
            default: .text(""), modes: ps,
            help: "pipeline: each stage's layer count, input side first (2,1,1); empty: balanced by parameters",
            apply: { value, wire in
                wire.stageLayers = (value.text ?? "").split(separator: ",").compactMap { UInt32($0) }
            }),
        FitSetting(
            "micro_batches", .integer(1...4096), default: .integer(4), modes: ps,
            help: "pipeline: micro-batches per iteration (the batch is split; gradients are summed over them)",
            apply: { $1.microBatches = UInt32($0.integer ?? 4) }),
        FitSetting(
            "schedule_pipeline", .choice(PipelineSchedule.allCases.map(\.rawValue)), default: .text("1f1b"),
            modes: ps,
            help:
                "pipeline: gpipe (all forwards, then all backwards) or 1f1b (one forward, one backward: at most K micro-batches held per stage)",
            apply: { $1.pipelineSchedule = $0.text ?? "1f1b" }),
        FitSetting(
            "replicas", .integer(1...1024), default: .integer(1), modes: ps,
            help:
                "pipeline: data-parallel copies of the pipeline (replicas × stages workers), their gradients averaged each iteration (hybrid parallelism)",
            apply: { $1.replicas = UInt32($0.integer ?? 1) }),
        FitSetting(
            "servers", .integerOrWord(0...1_024, words: ["auto"]), default: .text("auto"), modes: ps,
            help:
                "parameter servers holding the weights, each a contiguous range (chimera server; README \"Sharded parameter servers\"); auto: every registered server for data-parallel float32 fits (none registered: the master); 0: the master",
            apply: { value, wire in
                if let count = value.integer { wire.servers = UInt32(count) } else { wire.clearServers() }
            }),
        // Bagging.
        FitSetting(
            "trees_per_worker", .integer(1...10_000), default: .integer(1), modes: trees,
            help: "trees each worker fits",
            apply: { $1.treesPerWorker = UInt32($0.integer ?? 1) }),
        FitSetting(
            "criterion", .choice(["auto", "gini", "entropy", "squared_error"]), default: .text("auto"), modes: trees,
            help:
                "gini, entropy (classification) or squared_error (regression trees); auto: gini, or squared_error when the labels are continuous",
            apply: { $1.criterion = $0.text == "auto" ? "" : ($0.text ?? "") }),
        FitSetting(
            "max_depth", .integer(0...1_000), default: .integer(0), modes: trees,
            help: "maximum tree depth (0: unlimited)",
            apply: { $1.maxDepth = UInt32($0.integer ?? 0) }),
        FitSetting(
            "min_samples_split", .integer(2...Int(UInt32.max)), default: .integer(2), modes: trees,
            help: "minimum samples to split a node (counted in bootstrap draws)",
            apply: { $1.minSamplesSplit = UInt32($0.integer ?? 2) }),
        FitSetting(
            "min_samples_leaf", .integer(1...Int(UInt32.max)), default: .integer(1), modes: trees,
            help: "minimum samples per leaf", apply: { $1.minSamplesLeaf = UInt32($0.integer ?? 1) }),
        FitSetting(
            "max_features",
            .text(
                "all, sqrt, log2, a fraction such as 0.5 or a count",
                validate: { text in
                    do {
                        _ = try MaxFeatures(parsing: text)
                        return nil
                    } catch {
                        return "\(error)"
                    }
                }),
            default: .text("all"), modes: trees,
            help: "features tried per split: all, sqrt, log2, a fraction (0.5) or a count",
            apply: { $1.maxFeatures = $0.text ?? "all" }),
        FitSetting(
            "max_leaf_nodes", .integer(0...Int(UInt32.max)), default: .integer(0), modes: trees,
            help: "maximum leaves per tree (0: unlimited; otherwise nodes are split best first)",
            apply: { $1.maxLeafNodes = UInt32($0.integer ?? 0) }),
        FitSetting(
            "bootstrap", .boolean, default: .boolean(true), modes: trees,
            help: "fit each tree on a bootstrap of the shard (false: on the whole shard)",
            apply: { $1.noBootstrap = !($0.boolean ?? true) }),
    ]

    static let byName: [String: FitSetting] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    public static func setting(_ name: String) -> FitSetting? { byName[name] }

    /// The known name closest to a misspelt one (at most two edits away), for "did you mean".
    static func suggestion(for name: String) -> String? {
        let lowered = name.lowercased().replacing("-", with: "_")
        if byName[lowered] != nil { return lowered }
        let best = all.map { ($0.name, editDistance(lowered, $0.name)) }.min { $0.1 < $1.1 }
        guard let best, best.1 <= 2 else { return nil }
        return best.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8)
        let b = Array(b.utf8)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}
