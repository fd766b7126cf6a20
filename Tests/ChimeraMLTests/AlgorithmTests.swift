import ChimeraML
import Testing

/// The distributed algorithms as pure state machines: the master's `ParameterServerState` and the
/// workers' rules (`LocalSGD`, `ElasticWorker`), driven round by round in process.
@Suite("Distributed algorithms")
struct AlgorithmTests {
    static func problem() -> (Objective, [Dataset]) {
        var spec = SyntheticData.Specification()
        spec.rows = 400
        spec.features = 5
        spec.seed = 3
        let data = SyntheticData.generate(spec)
        return (
            Objective(kind: .logisticRegression, features: 5, classes: [0, 1]), SyntheticData.partition(data, parts: 2)
        )
    }

    static func configuration(_ algorithm: Algorithm, rounds: Int = 25) -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.algorithm = algorithm
        configuration.maxIterations = rounds
        configuration.eta0 = 0.3
        configuration.alpha = 1e-3
        configuration.localSteps = 1
        configuration.resolveAlgorithm()
        return configuration
    }

    /// BSP rounds as N workers run them: each pushes what its algorithm's worker mode computes on its
    /// shard (full batches). Returns the master and the EASGD workers' own models.
    static func run(_ configuration: TrainingConfiguration, _ objective: Objective, _ shards: [Dataset])
        -> (ParameterServerState, [[Float]])
    {
        var master = ParameterServerState(configuration: configuration, objective: objective)
        for (index, shard) in shards.enumerated() { _ = master.join(UInt32(index), rows: shard.rows) }
        let local = LocalSGD(objective: objective, configuration: configuration)
        var elastic = shards.map { _ in ElasticWorker(objective: objective, configuration: configuration) }
        var samplers = shards.map { MinibatchSampler(rows: $0.rows, seed: 1) }
        var gradient = [Float](repeating: 0, count: objective.weightCount)
        while !master.isDone {
            let weights = master.weights
            let clock = master.completedIterations
            for index in shards.indices { _ = master.requestStart(UInt32(index), clock: clock) }
            for (index, shard) in shards.enumerated() {
                var update: [Float]
                let loss: Double
                switch configuration.workerMode {
                case .gradient:
                    loss = objective.lossAndGradient(weights: weights, data: shard, gradient: &gradient)
                    update = gradient
                case .localSGD:
                    (update, loss) = local.delta(
                        weights: weights, data: shard, iteration: clock, sampler: &samplers[index])
                case .elastic:
                    (update, loss) = elastic[index].round(
                        centre: weights, data: shard, iteration: clock, sampler: &samplers[index])
                }
                let (outcome, _) = master.push(UInt32(index), clock: clock, rows: shard.rows, loss: loss) {
                    into, scale in
                    for i in into.indices { into[i] += scale * update[i] }
                }
                #expect(outcome == .accepted)
            }
        }
        return (master, elastic.map { $0.model ?? [] })
    }

    @Test("ma with K = 1 equals ssgd")
    func modelAveragingIsSSGD() {
        let (objective, shards) = Self.problem()
        let (ssgd, _) = Self.run(Self.configuration(.ssgd), objective, shards)
        let (ma, _) = Self.run(Self.configuration(.ma), objective, shards)
        #expect(ma.completedIterations == 25 && ssgd.completedIterations == 25)
        #expect(maxRelativeDifference(ma.weights, ssgd.weights) < 1e-5)
        #expect(ssgd.lossHistory.last! < ssgd.lossHistory.first!)
    }

    @Test("bmuf with block momentum 0 and block learning rate 1 equals ma; with momentum it differs")
    func bmufWithoutMomentumIsMA() {
        let (objective, shards) = Self.problem()
        var plain = Self.configuration(.bmuf)
        plain.localSteps = 3
        plain.blockMomentum = 0
        plain.blockLearningRate = 1
        var averaging = Self.configuration(.ma)
        averaging.localSteps = 3
        let (bmuf, _) = Self.run(plain, objective, shards)
        let (ma, _) = Self.run(averaging, objective, shards)
        #expect(maxRelativeDifference(bmuf.weights, ma.weights) < 1e-6)
        plain.blockMomentum = 0.5
        let (filtered, _) = Self.run(plain, objective, shards)
        #expect(maxRelativeDifference(filtered.weights, ma.weights) > 1e-3)
        #expect(filtered.optimizerState.block != nil, "the block filter is part of the checkpoint")
    }

    @Test("the block filter follows its formula: Δ ← μΔ + ζG, W ← W + Δ, served W + μΔ")
    func blockFilterFormula() {
        var filter = BlockFilter(momentum: 0.5, learningRate: 2, start: [1, 1])
        var served: [Float] = [1, 1]
        filter.apply(averageDelta: [0.1, -0.2], served: &served)
        // Δ = 2·G = (0.2, −0.4); W = (1.2, 0.6); served = W + 0.5Δ = (1.3, 0.4).
        #expect(abs(filter.velocity[0] - 0.2) < 1e-6 && abs(filter.base[1] - 0.6) < 1e-6)
        #expect(abs(served[0] - 1.3) < 1e-6 && abs(served[1] - 0.4) < 1e-6)
        filter.apply(averageDelta: [0, 0], served: &served)
        // No new delta: the momentum alone moves on (Δ = 0.5Δ).
        #expect(abs(filter.velocity[0] - 0.1) < 1e-6 && abs(filter.base[0] - 1.3) < 1e-6)
    }

    @Test("easgd with ρ → 0 leaves the workers independent; with ρ > 0 the centre follows them")
    func elasticAveraging() {
        let (objective, shards) = Self.problem()
        var configuration = Self.configuration(.easgd, rounds: 10)
        configuration.localSteps = 2
        configuration.rho = 0
        let (centreless, models) = Self.run(configuration, objective, shards)
        let start = objective.initialWeights(seed: configuration.seed)
        #expect(centreless.weights == start, "no elastic force: the centre never moves")
        // Each worker alone: 10 rounds × 2 local steps of SGD on its own shard.
        let local = LocalSGD(objective: objective, configuration: configuration)
        for (index, shard) in shards.enumerated() {
            var alone = start
            var sampler = MinibatchSampler(rows: shard.rows, seed: 1)
            for round in 0..<10 {
                let (delta, _) = local.delta(weights: alone, data: shard, iteration: round, sampler: &sampler)
                for i in alone.indices { alone[i] += delta[i] }
            }
            #expect(maxRelativeDifference(models[index], alone) < 1e-6, "worker \(index)")
        }
        #expect(maxRelativeDifference(models[0], models[1]) > 1e-2, "different shards, different models")

        configuration.rho = 2
        let (pulled, elastic) = Self.run(configuration, objective, shards)
        #expect(maxRelativeDifference(pulled.weights, start) > 1e-2, "the centre moved toward the workers")
        let spread = maxRelativeDifference(elastic[0], elastic[1])
        #expect(spread < maxRelativeDifference(models[0], models[1]), "the elastic force keeps them closer")
    }

    @Test("staleness-aware asgd divides a push's step by its staleness τ")
    func stalenessAware() {
        let objective = Objective(kind: .linearRegression, features: 1, classes: [])
        var configuration = Self.configuration(.asgd)
        configuration.alpha = 0
        configuration.eta0 = 0.1
        configuration.stalenessAware = true
        #expect(configuration.staleness == nil, "asgd without a bound is unbounded")
        var master = ParameterServerState(configuration: configuration, objective: objective)
        _ = master.join(0, rows: 1)
        _ = master.join(1, rows: 1)
        _ = master.requestStart(0, clock: 0)
        _ = master.requestStart(1, clock: 0)
        func push(_ worker: UInt32, clock: Int, gradient: [Float]) {
            _ = master.push(worker, clock: clock, rows: 1, loss: 1) { into, scale in
                for i in into.indices { into[i] += scale * gradient[i] }
            }
        }
        // Worker 1 pushes twice while worker 0 computes: worker 0's push is two updates old.
        push(1, clock: 0, gradient: [0, 0])
        _ = master.requestStart(1, clock: 1)
        push(1, clock: 1, gradient: [0, 0])
        let before = master.weights
        push(0, clock: 0, gradient: [1, 1])
        // η · share / τ = 0.1 · ½ / 2.
        #expect(abs((before[0] - master.weights[0]) - 0.025) < 1e-6)
    }
}
