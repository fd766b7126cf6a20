public import ChimeraML
package import ChimeraWire

/// proto3 leaves unset fields at zero; these mappings turn zeros into Chimera's defaults.
extension TrainingConfiguration {
    package init(wire: Chimera_V1_FitConfig) throws(ConfigurationError) {
        self.init()
        switch wire.model {
        case .unspecified, .logisticRegression: model = .logisticRegression
        case .linearRegression: model = .linearRegression
        case .softmax: model = .softmax
        case .linearSvm: model = .linearSVM
        case .mlp: model = .mlp
        default: throw ConfigurationError("model \(wire.model) is not a parameter-server model")
        }
        switch wire.penalty {
        case .unspecified, .l2: penalty = .l2
        case .none: penalty = .none
        case .l1: penalty = .l1
        case .elasticNet: penalty = .elasticNet
        case .UNRECOGNIZED(let value): throw ConfigurationError("unknown penalty \(value)")
        }
        if wire.alpha != 0 { alpha = wire.alpha }
        if wire.l1Ratio != 0 { l1Ratio = wire.l1Ratio }
        switch wire.schedule {
        case .learningRateConstant: schedule = .constant
        case .learningRateInverseScaling: schedule = .inverseScaling
        case .learningRateOptimal: schedule = .optimal
        case .UNRECOGNIZED(let value): throw ConfigurationError("unknown learning-rate schedule \(value)")
        }
        if wire.eta0 != 0 { eta0 = wire.eta0 }
        if wire.powerT != 0 { powerT = wire.powerT }
        momentum = wire.momentum
        if wire.maxIterations != 0 { maxIterations = Int(clamping: wire.maxIterations) }
        tolerance = wire.tolerance
        batchSize = Int(clamping: wire.batchSize)
        switch wire.workerMode {
        case .gradient: workerMode = .gradient
        case .localSgd: workerMode = .localSGD
        case .elastic: workerMode = .elastic
        case .UNRECOGNIZED(let value): throw ConfigurationError("unknown worker_mode \(value)")
        }
        if wire.localSteps != 0 { localSteps = Int(wire.localSteps) }
        staleness = wire.unboundedStaleness ? nil : Int(clamping: wire.staleness)
        if wire.seed != 0 { seed = wire.seed }
        standardize = !wire.rawFeatures
        checkpointEvery = Int(wire.checkpointEvery)
        switch wire.onDivergence {
        case .unspecified, .fail: onDivergence = .fail
        case .backoff: onDivergence = .backoff
        case .UNRECOGNIZED(let value): throw ConfigurationError("unknown on_divergence \(value)")
        }
        if wire.maxBackoffs != 0 { maxBackoffs = Int(wire.maxBackoffs) }
        if !wire.optimizer.isEmpty {
            guard let kind = OptimizerKind(rawValue: wire.optimizer) else {
                throw ConfigurationError("optimizer must be sgd, nesterov, adam or adamw, not \"\(wire.optimizer)\"")
            }
            optimizer = kind
        }
        if wire.beta1 != 0 { beta1 = wire.beta1 }
        if wire.beta2 != 0 { beta2 = wire.beta2 }
        weightDecay = wire.weightDecay
        warmupSteps = Int(wire.warmupSteps)
        if !wire.algorithm.isEmpty {
            guard let named = Algorithm(rawValue: wire.algorithm) else {
                throw ConfigurationError(
                    "algorithm must be ssgd, ma, bmuf, easgd or asgd, not \"\(wire.algorithm)\"")
            }
            algorithm = named
        }
        if wire.hasBlockMomentum { blockMomentum = wire.blockMomentum }
        if wire.hasBlockLearningRate { blockLearningRate = wire.blockLearningRate }
        if wire.hasRho { rho = wire.rho }
        stalenessAware = wire.stalenessAware
        if !wire.wireDtype.isEmpty {
            guard let format = WireDType(rawValue: wire.wireDtype) else {
                throw ConfigurationError("wire_dtype must be float32, bfloat16 or float16, not \"\(wire.wireDtype)\"")
            }
            wireDType = format
        }
        resolveAlgorithm()
        if !wire.hidden.isEmpty { hidden = wire.hidden.map { Int($0) } }
        if !wire.activation.isEmpty {
            guard let kind = Activation(rawValue: wire.activation) else {
                throw ConfigurationError("activation must be relu or tanh, not \"\(wire.activation)\"")
            }
            activation = kind
        }
        if !wire.parallelism.isEmpty {
            guard let kind = Parallelism(rawValue: wire.parallelism) else {
                throw ConfigurationError(
                    "parallelism must be data, features or pipeline, not \"\(wire.parallelism)\"")
            }
            parallelism = kind
        }
        stages = Int(wire.stages)
        stageLayers = wire.stageLayers.map { Int($0) }
        if wire.microBatches != 0 { microBatches = Int(wire.microBatches) }
        if !wire.pipelineSchedule.isEmpty {
            guard let kind = PipelineSchedule(rawValue: wire.pipelineSchedule) else {
                throw ConfigurationError(
                    "pipeline_schedule must be gpipe or 1f1b, not \"\(wire.pipelineSchedule)\"")
            }
            pipelineSchedule = kind
        }
        if wire.replicas != 0 { replicas = Int(wire.replicas) }
        servers = wire.hasServers ? Int(wire.servers) : nil
        try validate()
    }

    /// Bounds on an MLP's shape: beyond them a fit is a typo, not a model this system trains.
    public static let maxLayerWidth = 65_536
    public static let maxHiddenLayers = 64

    public func validate() throws(ConfigurationError) {
        guard alpha >= 0, alpha.isFinite else { throw ConfigurationError("alpha must be ≥ 0") }
        guard (0...1).contains(l1Ratio) else { throw ConfigurationError("l1_ratio must be in [0, 1]") }
        guard eta0 > 0, eta0.isFinite else { throw ConfigurationError("eta0 must be > 0") }
        // The master steps in float32: a rate that does not fit one is infinity, not a rate.
        guard Float(eta0).isFinite else {
            throw ConfigurationError("eta0 must be at most 3.4e38 (float32), got \(eta0)")
        }
        guard (0...100).contains(maxBackoffs) else { throw ConfigurationError("max_backoffs must be 0…100") }
        guard momentum >= 0, momentum < 1 else { throw ConfigurationError("momentum must be in [0, 1)") }
        guard (1...10_000_000).contains(maxIterations) else {
            throw ConfigurationError("max_iterations must be 1…10,000,000")
        }
        guard tolerance >= 0 else { throw ConfigurationError("tolerance must be ≥ 0") }
        guard localSteps >= 1 else { throw ConfigurationError("local_steps must be ≥ 1") }
        guard beta1 > 0, beta1 < 1, beta2 > 0, beta2 < 1 else {
            throw ConfigurationError("beta1 and beta2 must be in (0, 1)")
        }
        guard weightDecay >= 0, weightDecay.isFinite else { throw ConfigurationError("weight_decay must be ≥ 0") }
        guard warmupSteps >= 0 else { throw ConfigurationError("warmup_steps must be ≥ 0") }
        if model == .mlp {
            guard !hidden.isEmpty else { throw ConfigurationError("an mlp needs at least one hidden layer") }
            if let index = hidden.firstIndex(where: { !(1...Self.maxLayerWidth).contains($0) }) {
                throw ConfigurationError(
                    "hidden layer \(index + 1) has \(hidden[index]) units: each needs 1…\(Self.maxLayerWidth)")
            }
            guard hidden.count <= Self.maxHiddenLayers else {
                throw ConfigurationError(
                    "an mlp has at most \(Self.maxHiddenLayers) hidden layers, not \(hidden.count)")
            }
        }
        guard blockMomentum >= 0, blockMomentum < 1 else {
            throw ConfigurationError("block_momentum must be in [0, 1)")
        }
        guard blockLearningRate > 0, blockLearningRate.isFinite else {
            throw ConfigurationError("block_learning_rate must be > 0")
        }
        guard rho >= 0, rho.isFinite else { throw ConfigurationError("rho must be ≥ 0") }
        if algorithm == .bmuf && staleness != 0 {
            throw ConfigurationError(
                "bmuf filters whole blocks of every worker: it needs staleness 0 (use ma or easgd for asynchronous rounds)"
            )
        }
        if parallelism == .pipeline {
            try validatePipeline()
        } else if parallelism == .features {
            guard model != .mlp else {
                throw ConfigurationError(
                    "parallelism features splits a linear model's columns; an mlp splits by layers (parallelism pipeline)"
                )
            }
            guard algorithm == .ssgd, staleness == 0, wireDType == .float32 else {
                throw ConfigurationError(
                    "a feature-partitioned iteration is synchronous: it needs algorithm ssgd, staleness 0 and wire_dtype float32"
                )
            }
            guard batchSize == 0 else {
                throw ConfigurationError(
                    "a feature-partitioned fit is full-batch gradient descent over every row: batch_size must be 0")
            }
        }
        if parallelism != .pipeline && (replicas != 1 || stages != 0 || !stageLayers.isEmpty) {
            throw ConfigurationError(
                "stages, stage_layers and replicas are pipeline settings: add parallelism pipeline")
        }
        if optimizer == .nesterov && momentum == 0 {
            throw ConfigurationError("the nesterov optimizer needs momentum > 0 (e.g. momentum 0.9)")
        }
    }

    /// A pipeline splits one network's layers and runs each iteration synchronously.
    func validatePipeline() throws(ConfigurationError) {
        guard model == .mlp else {
            throw ConfigurationError(
                "parallelism pipeline splits a neural network's layers: it needs model mlp, not \(model.rawValue)")
        }
        guard algorithm == .ssgd, staleness == 0 else {
            throw ConfigurationError(
                "a pipeline iteration is synchronous (one step per batch): it needs algorithm ssgd and staleness 0")
        }
        guard wireDType == .float32 else {
            throw ConfigurationError("pipeline stages exchange float32 (wire_dtype float32)")
        }
        guard (0...Self.maxHiddenLayers + 1).contains(stages) else {
            throw ConfigurationError("stages must be 0 (as many as the workers allow) … \(Self.maxHiddenLayers + 1)")
        }
        guard (1...4096).contains(microBatches) else { throw ConfigurationError("micro_batches must be 1…4096") }
        guard (1...1024).contains(replicas) else { throw ConfigurationError("replicas must be 1…1024") }
        if batchSize > 0 && microBatches > batchSize {
            throw ConfigurationError(
                "micro_batches \(microBatches) is more than batch_size \(batchSize): each micro-batch needs a row")
        }
        if !stageLayers.isEmpty {
            guard stageLayers.allSatisfy({ $0 >= 1 }) else {
                throw ConfigurationError("stage_layers: every stage needs at least one layer")
            }
            guard stageLayers.reduce(0, +) == hidden.count + 1 else {
                throw ConfigurationError(
                    "stage_layers \(stageLayers.map(String.init).joined(separator: ",")) covers \(stageLayers.reduce(0, +)) layers; hidden \(hidden.map(String.init).joined(separator: ",")) makes \(hidden.count + 1) (the hidden layers and the output layer)"
                )
            }
            guard stages == 0 || stages == stageLayers.count else {
                throw ConfigurationError("stages \(stages) but stage_layers has \(stageLayers.count) entries")
            }
        } else if stages > hidden.count + 1 {
            throw ConfigurationError(
                "\(stages) stages but the network has \(hidden.count + 1) layers (the hidden layers and the output layer): more stages than layers"
            )
        }
    }

    package var wire: Chimera_V1_FitConfig {
        var out = Chimera_V1_FitConfig()
        out.model =
            switch model {
            case .linearRegression: .linearRegression
            case .logisticRegression: .logisticRegression
            case .softmax: .softmax
            case .linearSVM: .linearSvm
            case .mlp: .mlp
            }
        out.penalty =
            switch penalty {
            case .none: .none
            case .l2: .l2
            case .l1: .l1
            case .elasticNet: .elasticNet
            }
        out.alpha = penalty == .none ? 0 : alpha
        out.l1Ratio = l1Ratio
        out.schedule =
            switch schedule {
            case .constant: .learningRateConstant
            case .inverseScaling: .learningRateInverseScaling
            case .optimal: .learningRateOptimal
            }
        out.eta0 = eta0
        out.powerT = powerT
        out.momentum = momentum
        out.maxIterations = UInt64(maxIterations)
        out.tolerance = tolerance
        out.batchSize = UInt64(batchSize)
        out.workerMode =
            switch workerMode {
            case .gradient: .gradient
            case .localSGD: .localSgd
            case .elastic: .elastic
            }
        out.algorithm = algorithm.rawValue
        out.blockMomentum = blockMomentum
        out.blockLearningRate = blockLearningRate
        out.rho = rho
        out.stalenessAware = stalenessAware
        out.wireDtype = wireDType.rawValue
        out.localSteps = UInt32(localSteps)
        out.staleness = UInt64(staleness ?? 0)
        out.unboundedStaleness = staleness == nil
        out.seed = seed
        out.rawFeatures = !standardize
        out.checkpointEvery = UInt32(checkpointEvery)
        out.onDivergence = onDivergence == .backoff ? .backoff : .fail
        out.maxBackoffs = UInt32(maxBackoffs)
        out.optimizer = optimizer.rawValue
        out.beta1 = beta1
        out.beta2 = beta2
        out.weightDecay = weightDecay
        out.warmupSteps = UInt32(warmupSteps)
        out.hidden = hidden.map { UInt32(clamping: $0) }
        out.parallelism = parallelism == .data ? "" : parallelism.rawValue
        out.stages = UInt32(clamping: stages)
        out.stageLayers = stageLayers.map { UInt32(clamping: $0) }
        out.microBatches = UInt32(clamping: microBatches)
        out.pipelineSchedule = pipelineSchedule.rawValue
        out.replicas = UInt32(clamping: replicas)
        if let servers { out.servers = UInt32(clamping: servers) }
        out.activation = activation.rawValue
        return out
    }
}

extension WireDType {
    /// The tensor dtype of this format.
    package var dtype: DType {
        switch self {
        case .float32: .float32
        case .bfloat16: .bfloat16
        case .float16: .float16
        }
    }
}

public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
