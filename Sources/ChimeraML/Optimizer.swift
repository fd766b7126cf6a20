/// The master's update rule.
public enum OptimizerKind: String, Sendable, CaseIterable, Codable {
    /// Stochastic gradient descent, with heavy-ball momentum when `momentum` > 0.
    case sgd
    /// SGD with Nesterov momentum (Sutskever et al. 2013, in PyTorch's form).
    case nesterov
    /// Adam (Kingma & Ba 2015): bias-corrected first and second moment estimates.
    case adam
    /// AdamW (Loshchilov & Hutter 2019): Adam with weight decay decoupled from the gradient.
    case adamw
}

/// What an optimizer carries from step to step; part of a checkpoint so that a resumed fit goes on
/// exactly where it stopped.
public struct OptimizerState: Sendable, Codable, Equatable {
    /// Updates applied so far (the schedule's and the bias correction's t).
    public var steps = 0
    /// Momentum's velocity (sgd, nesterov), or Adam's first moment.
    @PackedFloats public var first: [Float] = []
    /// Adam's second moment.
    @PackedFloats public var second: [Float] = []
    /// BMUF's block filter (`--algorithm bmuf`), saved with the moments.
    public var block: BlockFilter? = nil

    public init() {}
}

/// The master's update rule, on a gradient that already includes the penalty (`alpha`):
/// - sgd: v ← μ·v + g, w ← w − η·v (plain SGD when μ = 0);
/// - nesterov: v ← μ·v + g, w ← w − η·(g + μ·v);
/// - adam: m ← β1·m + (1−β1)·g, s ← β2·s + (1−β2)·g², w ← w − η·m̂ / (√ŝ + ε), with m̂ = m / (1−β1^t),
///   ŝ = s / (1−β2^t);
/// - adamw: as adam, and w ← w − η·λ·w (decay decoupled from the gradient).
/// For sgd, nesterov and adam a weight decay λ is added to the gradient (g + λ·w). The step η is the
/// schedule's rate at t, times min(1, t / warm-up steps) during the warm-up.
public struct Optimizer: Sendable {
    public let kind: OptimizerKind
    public let learningRate: LearningRate
    let momentum: Float
    let beta1: Float
    let beta2: Float
    let weightDecay: Float
    let warmupSteps: Int
    static let epsilon: Float = 1e-8
    public private(set) var state = OptimizerState()

    public init(_ configuration: TrainingConfiguration, weightCount: Int) {
        kind = configuration.optimizer
        learningRate = LearningRate(configuration)
        momentum = Float(configuration.momentum)
        beta1 = Float(configuration.beta1)
        beta2 = Float(configuration.beta2)
        weightDecay = Float(configuration.weightDecay)
        warmupSteps = configuration.warmupSteps
        let needsFirst = kind == .adam || kind == .adamw || momentum > 0
        state.first = needsFirst ? [Float](repeating: 0, count: weightCount) : []
        state.second = kind == .adam || kind == .adamw ? [Float](repeating: 0, count: weightCount) : []
    }

    public var steps: Int { state.steps }

    /// The step size at update t (1-based): the schedule's, ramped up over the warm-up.
    public func rate(at t: Int) -> Double {
        let base = learningRate.rate(at: t)
        guard warmupSteps > 0, t < warmupSteps else { return base }
        return base * Double(t) / Double(warmupSteps)
    }

    /// One update with the gradient `gradientScale × gradient` (a round's sum and 1 / its rows: no
    /// scaled copy). `scale` shrinks the step after a divergence backoff (and weighs an SSP update).
    /// Returns whether every new weight is finite, seen in the same pass (a million-weight model is
    /// memory-bound: each pass over it costs as much as the arithmetic).
    @discardableResult
    public mutating func step(weights: inout [Float], gradient: [Float], scale: Double = 1, gradientScale: Float = 1)
        -> Bool
    {
        state.steps += 1
        let t = state.steps
        let eta = Float(rate(at: t) * scale)
        let (decay, momentum, beta1, beta2) = (weightDecay, momentum, beta1, beta2)
        let count = weights.count
        var hits: UInt32 = 0
        // The moments are moved out for the loop (two buffers of `state` at once), and back after.
        var first: [Float] = []
        var second: [Float] = []
        swap(&first, &state.first)
        swap(&second, &state.second)
        defer {
            swap(&first, &state.first)
            swap(&second, &state.second)
        }
        @inline(__always) func note(_ value: Float) {
            hits |= (value.bitPattern & 0x7F80_0000) ^ 0x7F80_0000 == 0 ? 1 : 0
        }
        weights.withUnsafeMutableBufferPointer { w in
            gradient.withUnsafeBufferPointer { gradient in
                switch kind {
                case .sgd where momentum == 0:
                    for i in 0..<count {
                        w[i] -= eta * (gradientScale * gradient[i] + decay * w[i])
                        note(w[i])
                    }
                case .sgd, .nesterov:
                    let nesterov = kind == .nesterov
                    first.withUnsafeMutableBufferPointer { v in
                        for i in 0..<count {
                            let g = gradientScale * gradient[i] + decay * w[i]
                            v[i] = momentum * v[i] + g
                            w[i] -= eta * (nesterov ? g + momentum * v[i] : v[i])
                            note(w[i])
                        }
                    }
                case .adam, .adamw:
                    let correction1 = 1 - Float(LibM.pow(Double(beta1), Double(t)))
                    let correction2 = 1 - Float(LibM.pow(Double(beta2), Double(t)))
                    let decoupled = kind == .adamw
                    let epsilon = Self.epsilon
                    first.withUnsafeMutableBufferPointer { m in
                        second.withUnsafeMutableBufferPointer { s in
                            for i in 0..<count {
                                let raw = gradientScale * gradient[i]
                                let g = decoupled ? raw : raw + decay * w[i]
                                m[i] = beta1 * m[i] + (1 - beta1) * g
                                s[i] = beta2 * s[i] + (1 - beta2) * g * g
                                var update = (m[i] / correction1) / ((s[i] / correction2).squareRoot() + epsilon)
                                if decoupled { update += decay * w[i] }
                                w[i] -= eta * update
                                note(w[i])
                            }
                        }
                    }
                }
            }
        }
        return hits == 0
    }

    /// Forgets the moments (after going back to earlier weights); the step count goes on.
    public mutating func resetVelocity() {
        for i in state.first.indices { state.first[i] = 0 }
        for i in state.second.indices { state.second[i] = 0 }
    }

    /// Restores the step counter (resuming from a checkpoint without optimizer state).
    public mutating func restore(steps: Int) { state.steps = steps }

    /// Restores a checkpoint's state (ignored when its sizes do not match this model).
    public mutating func restore(_ saved: OptimizerState) {
        guard saved.first.count == state.first.count, saved.second.count == state.second.count else {
            return restore(steps: saved.steps)
        }
        state = saved
    }
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
    public func delta(weights: [Float], data: Dataset, iteration: Int, sampler: inout MinibatchSampler) -> (
        [Float], Double
    ) {
        var local = weights
        var gradient = [Float](repeating: 0, count: weights.count)
        let regularizer = Regularizer(configuration)
        let rate = LearningRate(configuration)
        var lossSum = 0.0
        let steps = max(1, configuration.localSteps)
        for step in 0..<steps {
            let batch = sampler.batch(of: data, size: configuration.batchSize)
            lossSum += objective.lossAndGradient(weights: local, data: batch, gradient: &gradient)
            lossSum += regularizer.apply(weights: local, penalized: objective.penalized, gradient: &gradient)
            let eta = Float(rate.rate(at: iteration * steps + step + 1))
            for i in local.indices { local[i] -= eta * gradient[i] }
        }
        for i in local.indices { local[i] -= weights[i] }
        return (local, lossSum / Double(steps))
    }
}

/// Mini-batches as epochs: the shard's rows in a seeded random order, taken `size` at a time; when
/// fewer than `size` are left, a new order begins (as PyTorch's samplers with drop_last do). Each
/// step costs O(size), not O(rows) as a fresh draw from the whole shard would.
public struct MinibatchSampler: Sendable {
    public let rows: Int
    private var order: [Int]
    private var position: Int
    private var random: SplitMix64

    public init(rows: Int, seed: UInt64) {
        self.rows = rows
        order = Array(0..<rows)
        random = SplitMix64(seed: seed)
        position = rows
    }

    /// The next mini-batch of `data` (which has `rows` rows); `data` itself for a full batch.
    public mutating func batch(of data: Dataset, size: Int) -> Dataset {
        guard size > 0, size < rows else { return data }
        return data.gather(next(size))
    }

    /// The next `size` row indices, sorted (neighbouring rows are read together); all rows when
    /// `size` is 0 or at least `rows`.
    public mutating func next(_ size: Int) -> [Int] {
        guard size > 0, size < rows else { return Array(0..<rows) }
        if position + size > rows {
            for i in stride(from: rows - 1, to: 0, by: -1) {
                order.swapAt(i, Int(random.next() % UInt64(i + 1)))
            }
            position = 0
        }
        defer { position += size }
        return order[position..<(position + size)].sorted()
    }
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

extension Array where Element == Float {
    /// Whether every value is finite, by the exponent bits: a branch-free reduction that vectorises
    /// (`contains(where:)` checked a 1 M-float model one value at a time, every round).
    public var allFinite: Bool {
        withUnsafeBufferPointer { values in
            values.withMemoryRebound(to: UInt32.self) { bits in
                var hits: UInt32 = 0
                for word in bits { hits |= (word & 0x7F80_0000) ^ 0x7F80_0000 == 0 ? 1 : 0 }
                return hits == 0
            }
        }
    }
}

extension OptimizerState {
    /// The state of `range` of the weights (a parameter server's key range).
    public func slice(_ range: Range<Int>) -> OptimizerState {
        var part = OptimizerState()
        part.steps = steps
        if !first.isEmpty { part.first = Array(first[range]) }
        if !second.isEmpty { part.second = Array(second[range]) }
        part.block = block?.slice(range)
        return part
    }

    /// The states of consecutive ranges, joined into the whole model's.
    public static func joined(_ parts: [OptimizerState]) -> OptimizerState {
        var whole = OptimizerState()
        whole.steps = parts.first?.steps ?? 0
        whole.first = parts.flatMap(\.first)
        whole.second = parts.flatMap(\.second)
        whole.block = BlockFilter.joined(parts.compactMap(\.block))
        return whole
    }
}
