/// The distributed training algorithms (`--algorithm`): what a worker pushes each round and how the
/// master turns the pushes into the weights it serves.
public enum Algorithm: String, Sendable, CaseIterable, Codable {
    /// Synchronous mini-batch SGD: gradients averaged (weighted by rows), one optimizer step per
    /// round under BSP; with a staleness bound s > 0, SSP SGD (each push a step).
    case ssgd
    /// Model averaging (local SGD; Zinkevich et al. 2010, McMahan et al. 2017): K = `local_steps` local
    /// steps per round, the master averages the models (w ← w + mean Δ).
    case ma
    /// Blockwise model-update filtering (Chen & Huo, ICASSP 2016): the averaged model delta G of a
    /// block is filtered with block momentum μ and block learning rate ζ: Δ ← μ·Δ + ζ·G,
    /// W ← W + Δ, and the workers start the next block from the Nesterov look-ahead W + μ·Δ.
    case bmuf
    /// Elastic averaging SGD (Zhang, Choromanska & LeCun, NeurIPS 2015): workers keep their own models;
    /// every τ = `local_steps` steps each moves by α(x_i − x̃) toward the centre x̃, which moves by the
    /// sum of those moves; α = η·ρ. Synchronous under BSP, asynchronous (each push applied) otherwise.
    case easgd
    /// Asynchronous SGD: each gradient applied as it arrives (unbounded staleness unless a bound
    /// s ≥ 1 is given); with `staleness_aware` the step is divided by the push's staleness τ
    /// (Zhang, Gupta, Lian & Liu, IJCAI 2016).
    case asgd

    /// What the workers push under this algorithm.
    public var workerMode: WorkerMode {
        switch self {
        case .ssgd, .asgd: .gradient
        case .ma, .bmuf: .localSGD
        case .easgd: .elastic
        }
    }
}

/// BMUF's filter on the master: the block's base model W, its block momentum Δ, and the look-ahead
/// model the workers start from. Pure: the parameter server calls it once per block.
public struct BlockFilter: Sendable, Equatable, Codable {
    public let momentum: Float
    public let learningRate: Float
    /// W(t): the filtered model, without the look-ahead.
    @PackedFloats public private(set) var base: [Float]
    /// Δ(t): the block momentum.
    @PackedFloats public private(set) var velocity: [Float]

    public init(momentum: Double, learningRate: Double, start: [Float]) {
        self.momentum = Float(momentum)
        self.learningRate = Float(learningRate)
        base = start
        velocity = [Float](repeating: 0, count: start.count)
    }

    /// One block: `averageDelta` is mean(w_i) − served, the workers' models after the block less the
    /// model they started from. Updates `served` to the next block's start, W + μΔ.
    public mutating func apply(averageDelta: [Float], served: inout [Float], scale: Float = 1) {
        let (mu, zeta) = (momentum, learningRate * scale)
        for i in base.indices {
            // G = W̄ − W_g(t−1) is the average delta itself (every worker started from `served`).
            let g = averageDelta[i]
            velocity[i] = mu * velocity[i] + zeta * g
            base[i] += velocity[i]
            served[i] = base[i] + mu * velocity[i]
        }
    }

    /// After a backoff the model goes back to `weights`, with no momentum left.
    public mutating func reset(to weights: [Float]) {
        base = weights
        for i in velocity.indices { velocity[i] = 0 }
    }
}

/// An EASGD worker's own model, kept from round to round of a job. Pure: the worker node calls it
/// with the centre it pulled and its shard.
public struct ElasticWorker: Sendable {
    public let local: LocalSGD
    /// α = η·ρ: how far each model moves toward the other per round.
    public let alpha: Float
    public private(set) var model: [Float]?

    public init(objective: Objective, configuration: TrainingConfiguration) {
        local = LocalSGD(objective: objective, configuration: configuration)
        alpha = Float(configuration.eta0 * configuration.rho)
    }

    /// One round: τ local steps from this worker's model (the centre, the first time), then the elastic
    /// move d = α(x_i − x̃) is taken out of the model and returned: the master adds it to the centre.
    /// Returns (d, mean loss over the steps).
    public mutating func round(centre: [Float], data: Dataset, iteration: Int, sampler: inout MinibatchSampler)
        -> ([Float], Double)
    {
        let start = model ?? centre
        let (delta, loss) = local.delta(weights: start, data: data, iteration: iteration, sampler: &sampler)
        var x = start
        var move = delta
        for i in x.indices {
            x[i] += delta[i]
            move[i] = alpha * (x[i] - centre[i])
            x[i] -= move[i]
        }
        model = x
        return (move, loss)
    }
}

extension BlockFilter {
    /// The filter of `range` of the weights (a parameter server's key range).
    public func slice(_ range: Range<Int>) -> BlockFilter {
        var part = self
        part.base = Array(base[range])
        part.velocity = Array(velocity[range])
        return part
    }

    /// The filters of consecutive ranges, joined into the whole model's.
    public static func joined(_ parts: [BlockFilter]) -> BlockFilter? {
        guard var whole = parts.first else { return nil }
        whole.base = parts.flatMap(\.base)
        whole.velocity = parts.flatMap(\.velocity)
        return whole
    }
}
