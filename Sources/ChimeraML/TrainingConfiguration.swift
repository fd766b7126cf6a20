/// Everything that shapes a parameter-server fit, with defaults that work on standardised data.
public struct TrainingConfiguration: Sendable, Equatable, Codable {
    public var model: ModelKind = .logisticRegression
    public var penalty: Penalty = .l2
    public var alpha: Double = 1e-4
    public var l1Ratio: Double = 0.15
    public var schedule: LearningRateSchedule = .constant
    public var eta0: Double = 0.1
    public var powerT: Double = 0.25
    public var momentum: Double = 0
    public var maxIterations: Int = 200
    /// Stop when the loss improved by less than this over `patience` iterations (0: never).
    public var tolerance: Double = 0
    public var patience: Int = 5
    /// Rows per mini-batch (0: the whole shard).
    public var batchSize: Int = 0
    public var workerMode: WorkerMode = .gradient
    public var localSteps: Int = 1
    /// SSP bound s; nil is unbounded (fully asynchronous); 0 is BSP.
    public var staleness: Int? = 0
    public var seed: UInt64 = 42
    public var standardize: Bool = true
    public var checkpointEvery: Int = 0
    /// A non-finite or exploding loss or update ends the fit (`fail`) or restarts it from the best
    /// finite weights with half the step (`backoff`, at most `maxBackoffs` times).
    public var onDivergence: DivergencePolicy = .fail
    public var maxBackoffs: Int = 3
    /// The master's update rule and its settings (see `Optimizer`).
    public var optimizer: OptimizerKind = .sgd
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var weightDecay: Double = 0
    /// Updates over which the step ramps up from 0 to the schedule's (0: none).
    public var warmupSteps: Int = 0
    /// The MLP's hidden layers (widths, input side first) and their non-linearity.
    public var hidden: [Int] = [100]
    public var activation: Activation = .relu
    /// The distributed algorithm (it decides `workerMode`) and its settings.
    public var algorithm: Algorithm = .ssgd
    public var blockMomentum: Double = 0.9
    public var blockLearningRate: Double = 1
    public var rho: Double = 1
    public var stalenessAware = false
    /// The format of pushes and weights on the wire.
    public var wireDType: WireDType = .float32
    /// Model parallelism: pipeline stages (0: as many as the workers allow), each stage's layer
    /// count (empty: balanced), micro-batches per iteration, their order, and data-parallel replicas
    /// of the pipeline (hybrid parallelism).
    public var parallelism: Parallelism = .data
    public var stages = 0
    public var stageLayers: [Int] = []
    public var microBatches = 4
    public var pipelineSchedule: PipelineSchedule = .oneFOneB
    public var replicas = 1
    /// Parameter servers holding the weights (nil: every registered one; 0: the master).
    public var servers: Int? = nil

    public init() {}

    // Decoded field by field so that model files written before a field existed still load.
    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let found = try c.decodeIfPresent(T.self, forKey: key) { value = found }
        }
        try read(.model, &model)
        try read(.penalty, &penalty)
        try read(.alpha, &alpha)
        try read(.l1Ratio, &l1Ratio)
        try read(.schedule, &schedule)
        try read(.eta0, &eta0)
        try read(.powerT, &powerT)
        try read(.momentum, &momentum)
        try read(.maxIterations, &maxIterations)
        try read(.tolerance, &tolerance)
        try read(.patience, &patience)
        try read(.batchSize, &batchSize)
        try read(.workerMode, &workerMode)
        try read(.localSteps, &localSteps)
        // Absent means unbounded, as the synthesized encoder leaves a nil bound out.
        staleness = try c.decodeIfPresent(Int.self, forKey: .staleness)
        try read(.seed, &seed)
        try read(.standardize, &standardize)
        try read(.checkpointEvery, &checkpointEvery)
        try read(.onDivergence, &onDivergence)
        try read(.maxBackoffs, &maxBackoffs)
        try read(.optimizer, &optimizer)
        try read(.beta1, &beta1)
        try read(.beta2, &beta2)
        try read(.weightDecay, &weightDecay)
        try read(.warmupSteps, &warmupSteps)
        try read(.hidden, &hidden)
        try read(.activation, &activation)
        try read(.algorithm, &algorithm)
        try read(.blockMomentum, &blockMomentum)
        try read(.blockLearningRate, &blockLearningRate)
        try read(.rho, &rho)
        try read(.stalenessAware, &stalenessAware)
        try read(.wireDType, &wireDType)
        try read(.parallelism, &parallelism)
        try read(.stages, &stages)
        try read(.stageLayers, &stageLayers)
        try read(.microBatches, &microBatches)
        try read(.pipelineSchedule, &pipelineSchedule)
        try read(.replicas, &replicas)
        servers = try c.decodeIfPresent(Int.self, forKey: .servers)
    }

    /// The algorithm and the worker mode agree: `worker_mode local-sgd` without an algorithm is model
    /// averaging (its older spelling), and asynchronous SGD without a bound is unbounded.
    public mutating func resolveAlgorithm() {
        if algorithm == .ssgd && workerMode == .localSGD { algorithm = .ma }
        if algorithm == .asgd && staleness == 0 { staleness = nil }
        workerMode = algorithm.workerMode
    }
}

/// The penalty's contribution, on every weight but the biases.
public struct Regularizer: Sendable {
    public let penalty: Penalty
    public let alpha: Float
    public let l1Ratio: Float

    public init(_ configuration: TrainingConfiguration) {
        penalty = configuration.penalty
        alpha = Float(configuration.alpha)
        l1Ratio = Float(configuration.l1Ratio)
    }

    /// Adds the penalty gradient to `gradient` and returns the penalty's value. Only the weights in
    /// `penalized` (an objective's `penalized` ranges: never the biases) are penalised.
    /// `factor` multiplies what is added (a round's unscaled sum takes rows × the penalty's gradient).
    /// The penalty's value alone (a worker of a sharded job adds it to its loss, as the master would).
    public func value(weights: [Float], penalized: [Range<Int>]) -> Double {
        guard penalty != .none, alpha > 0 else { return 0 }
        let (l1, l2) = mix
        var value: Float = 0
        for range in penalized {
            for index in range {
                let w = weights[index]
                value += l1 * abs(w) + 0.5 * l2 * w * w
            }
        }
        return Double(alpha * value)
    }

    private var mix: (l1: Float, l2: Float) {
        switch penalty {
        case .none: (0, 0)
        case .l2: (0, 1)
        case .l1: (1, 0)
        case .elasticNet: (l1Ratio, 1 - l1Ratio)
        }
    }

    public func apply(weights: [Float], penalized: [Range<Int>], gradient: inout [Float], factor: Float = 1) -> Double {
        guard penalty != .none, alpha > 0 else { return 0 }
        let (l1, l2) = mix
        var value: Float = 0
        for range in penalized {
            for index in range {
                let w = weights[index]
                value += l1 * abs(w) + 0.5 * l2 * w * w
                gradient[index] += factor * alpha * (l1 * (w > 0 ? 1 : (w < 0 ? -1 : 0)) + l2 * w)
            }
        }
        return Double(alpha * value)
    }
}

/// The learning rate at update `t` (1-based).
public struct LearningRate: Sendable {
    public let schedule: LearningRateSchedule
    public let eta0: Double
    public let powerT: Double
    public let alpha: Double
    let t0: Double

    public init(_ configuration: TrainingConfiguration) {
        schedule = configuration.schedule
        eta0 = configuration.eta0
        powerT = configuration.powerT
        alpha = max(configuration.alpha, 1e-12)
        // scikit-learn's heuristic for "optimal": typical weight size, first step no larger than it.
        let typw = (1 / alpha.squareRoot()).squareRoot()
        let initialEta = typw / max(1, LearningRate.derivativeBound(configuration.model, typw))
        t0 = 1 / (initialEta * alpha)
    }

    static func derivativeBound(_ model: ModelKind, _ typw: Double) -> Double {
        switch model {
        case .linearRegression: typw
        case .logisticRegression, .softmax: 1 / (1 + LibM.exp(-typw))
        case .linearSVM, .mlp: 1
        }
    }

    public func rate(at t: Int) -> Double {
        let t = Double(max(t, 1))
        switch schedule {
        case .constant: return eta0
        case .inverseScaling: return eta0 / LibM.pow(t, powerT)
        case .optimal: return 1 / (alpha * (t0 + t - 1))
        }
    }
}

/// libm functions the pure core needs (Glibc, no Foundation).
public enum LibM {
    public static func exp(_ x: Double) -> Double { Glibc.exp(x) }
    public static func pow(_ x: Double, _ y: Double) -> Double { Glibc.pow(x, y) }
    public static func log1p(_ x: Double) -> Double { Glibc.log1p(x) }
    public static func log(_ x: Double) -> Double { Glibc.log(x) }
    public static func log2(_ x: Double) -> Double { Glibc.log2(x) }
    public static func tanh(_ x: Double) -> Double { Glibc.tanh(x) }
    public static func cos(_ x: Double) -> Double { Glibc.cos(x) }
}

#if canImport(Glibc)
    import Glibc
#endif
