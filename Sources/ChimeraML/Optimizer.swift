/// The master's update rule: SGD with optional momentum, on a gradient that already includes the penalty.
public struct SGDOptimizer: Sendable {
    public let learningRate: LearningRate
    public let momentum: Float
    private var velocity: [Float]
    /// Updates applied so far (the schedule's t).
    public private(set) var steps = 0

    public init(_ configuration: TrainingConfiguration, weightCount: Int) {
        learningRate = LearningRate(configuration)
        momentum = Float(configuration.momentum)
        velocity = momentum > 0 ? [Float](repeating: 0, count: weightCount) : []
    }

    /// w ← w − η_t · g (with momentum: v ← μ·v + g; w ← w − η_t · v).
    /// `scale` shrinks the step after a divergence backoff.
    public mutating func step(weights: inout [Float], gradient: [Float], scale: Double = 1) {
        steps += 1
        let eta = Float(learningRate.rate(at: steps) * scale)
        if momentum > 0 {
            for i in weights.indices {
                velocity[i] = momentum * velocity[i] + gradient[i]
                weights[i] -= eta * velocity[i]
            }
        } else {
            for i in weights.indices { weights[i] -= eta * gradient[i] }
        }
    }

    /// Forgets the momentum (after going back to earlier weights).
    public mutating func resetVelocity() {
        for i in velocity.indices { velocity[i] = 0 }
    }

    /// Restores the step counter (resuming from a checkpoint).
    public mutating func restore(steps: Int) { self.steps = steps }
}

/// Local SGD on a worker: K mini-batch steps from the master's weights; the delta is what it pushes.
public struct LocalSGD: Sendable {
    public let objective: Objective
    public let configuration: TrainingConfiguration

    public init(objective: Objective, configuration: TrainingConfiguration) {
        self.objective = objective
        self.configuration = configuration
    }

    /// Returns (w_after − w_before, mean loss over the steps). `t` is the global step for the schedule.
    public func delta(weights: [Float], data: Dataset, iteration: Int, random: inout SplitMix64) -> ([Float], Double) {
        var local = weights
        var gradient = [Float](repeating: 0, count: weights.count)
        let regularizer = Regularizer(configuration)
        let rate = LearningRate(configuration)
        var lossSum = 0.0
        let steps = max(1, configuration.localSteps)
        for step in 0..<steps {
            let batch = minibatch(data, size: configuration.batchSize, random: &random)
            lossSum += objective.lossAndGradient(weights: local, data: batch, gradient: &gradient)
            lossSum += regularizer.apply(weights: local, stride: objective.stride, gradient: &gradient)
            let eta = Float(rate.rate(at: iteration * steps + step + 1))
            for i in local.indices { local[i] -= eta * gradient[i] }
        }
        for i in local.indices { local[i] -= weights[i] }
        return (local, lossSum / Double(steps))
    }
}

/// `size` rows drawn without replacement (the whole dataset when size is 0 or ≥ rows).
public func minibatch(_ data: Dataset, size: Int, random: inout SplitMix64) -> Dataset {
    guard size > 0, size < data.rows else { return data }
    var indices = Array(0..<data.rows)
    for i in 0..<size {
        let j = i + Int(random.next() % UInt64(data.rows - i))
        indices.swapAt(i, j)
    }
    return data.gather(Array(indices[0..<size]).sorted())
}

/// A small, fast, seedable generator (SplitMix64): deterministic runs under a seed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform Float in [0, 1).
    public mutating func nextUnit() -> Float { Float(next() >> 40) / Float(1 << 24) }

    /// A standard normal sample (Box–Muller).
    public mutating func nextGaussian() -> Float {
        let u1 = max(nextUnit(), 1e-7)
        let u2 = nextUnit()
        return (-2 * logf(u1)).squareRoot() * cosf(2 * .pi * u2)
    }
}

#if canImport(Glibc)
    import Glibc
#endif
