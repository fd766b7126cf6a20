import ChimeraML
import Testing

/// Divergence is an outcome of the state machine: the fit ends (or backs off) within one round and
/// the weights it keeps are finite.
@Suite("Divergence")
struct DivergenceTests {
    /// A regression whose features are large: plain gradient descent with a big step overflows.
    static let data: Dataset = {
        var spec = SyntheticData.Specification()
        spec.task = .regression
        spec.rows = 400
        spec.features = 5
        spec.seed = 7
        let base = SyntheticData.generate(spec)
        return Dataset(featureNames: base.featureNames, features: base.features.map { $0 * 30 }, labels: base.labels)
    }()

    static func configuration(eta0: Double, staleness: Int? = 0, policy: DivergencePolicy = .fail, backoffs: Int = 3)
        -> TrainingConfiguration
    {
        var configuration = TrainingConfiguration()
        configuration.model = .linearRegression
        configuration.eta0 = eta0
        configuration.maxIterations = 300
        configuration.staleness = staleness
        configuration.onDivergence = policy
        configuration.maxBackoffs = backoffs
        return configuration
    }

    /// Runs two workers (each half of the data) through the state machine until it is done, or
    /// `limit` rounds; returns the state.
    static func run(_ configuration: TrainingConfiguration, limit: Int = 400, poison: (Int) -> Bool = { _ in false })
        -> ParameterServerState
    {
        let objective = Objective(kind: .linearRegression, features: data.columns, classes: [])
        var state = ParameterServerState(configuration: configuration, objective: objective)
        let halves = [data.gather(Array(0..<200)), data.gather(Array(200..<400))]
        _ = state.join(1, rows: 200)
        _ = state.join(2, rows: 200)
        var gradient = [Float](repeating: 0, count: objective.weightCount)
        var round = 0
        while !state.isDone && round < limit {
            let clock = state.completedIterations
            for worker in [UInt32(1), 2] {
                guard state.requestStart(worker, clock: clock) == [.weights(worker: worker, done: false)] else {
                    continue
                }
                #expect(state.weights.allSatisfy { $0.isFinite }, "weights handed to a worker must be finite")
                var loss = objective.lossAndGradient(
                    weights: state.weights, data: halves[Int(worker) - 1], gradient: &gradient)
                if poison(clock) || !loss.isFinite || gradient.contains(where: { !$0.isFinite }) {
                    loss = .infinity
                    for i in gradient.indices { gradient[i] = 0 }
                }
                let (outcome, _) = state.push(worker, clock: clock, rows: 200, loss: loss) { into, scale in
                    for i in into.indices { into[i] += scale * gradient[i] }
                }
                #expect(outcome == .accepted)
            }
            round += 1
        }
        return state
    }

    @Test("BSP: a step far too large ends the fit failed within a few rounds, weights finite, with a hint")
    func explodingLossFails() {
        let state = Self.run(Self.configuration(eta0: 5))
        #expect(state.isDone)
        let divergence = try! #require(state.divergence)
        #expect(divergence.iteration < 40, "detected early, not after the iteration budget: \(divergence)")
        #expect(state.weights.allSatisfy { $0.isFinite })
        #expect(divergence.description.contains("eta0 ≤"), "\(divergence)")
    }

    @Test("BSP: a worker's non-finite loss ends the fit in that round, keeping the best weights")
    func nonFiniteLossFails() {
        let state = Self.run(Self.configuration(eta0: 1e-4)) { $0 == 5 }
        let divergence = try! #require(state.divergence)
        #expect(divergence.iteration == 5)
        #expect(divergence.cause.contains("not finite"))
        #expect(state.weights.allSatisfy { $0.isFinite })
        #expect(state.completedIterations == 6)
    }

    @Test("An overflowing step (finite eta0, huge) never leaves non-finite weights")
    func overflowingWeights() {
        let state = Self.run(Self.configuration(eta0: 1e37))
        let divergence = try! #require(state.divergence)
        #expect(divergence.iteration <= 2, "\(divergence)")
        #expect(state.weights.allSatisfy { $0.isFinite })
    }

    @Test("backoff: the fit goes back to its best weights with half the step and converges")
    func backoffRecovers() {
        let state = Self.run(Self.configuration(eta0: 5, policy: .backoff, backoffs: 20))
        #expect(state.divergence == nil, "\(state.divergence.map(String.init(describing:)) ?? "")")
        #expect(!state.backoffs.isEmpty)
        #expect(state.stepScale == Double(1) / Double(1 << state.backoffs.count))
        #expect(state.completedIterations == 300)
        #expect(state.currentLoss! < state.lossHistory.first!)
    }

    @Test("backoff: after max_backoffs divergences the fit fails")
    func backoffGivesUp() {
        let state = Self.run(Self.configuration(eta0: 1e-4, policy: .backoff, backoffs: 2)) { $0 >= 3 }
        #expect(state.backoffs.count == 2)
        #expect(state.divergence != nil)
        #expect(state.weights.allSatisfy { $0.isFinite })
    }

    @Test("SSP: a non-finite loss ends the fit; an exploding one too")
    func sspDivergence() {
        let poisoned = Self.run(Self.configuration(eta0: 1e-4, staleness: 2)) { $0 == 4 }
        #expect(poisoned.divergence != nil)
        let exploding = Self.run(Self.configuration(eta0: 5, staleness: nil))
        #expect(exploding.divergence != nil)
        #expect(exploding.weights.allSatisfy { $0.isFinite })
    }

    @Test("a fit that ends well above its first loss (oscillating, never exploding) ends failed: it did not learn")
    func didNotLearn() {
        var configuration = Self.configuration(eta0: 1e-4)
        configuration.maxIterations = 20
        var state = ParameterServerState(
            configuration: configuration, objective: Objective(kind: .linearRegression, features: 2, classes: []))
        _ = state.join(1, rows: 10)
        for clock in 0..<20 {
            _ = state.requestStart(1, clock: clock)
            // 1, then 3–5× the first: never 10×, never non-finite.
            let loss = clock == 0 ? 1.0 : 3.0 + Double(clock % 3)
            _ = state.push(1, clock: clock, rows: 10, loss: loss) { _, _ in }
        }
        #expect(state.isDone)
        let divergence = try! #require(state.divergence)
        #expect(divergence.cause.contains("not learning") && divergence.iteration < 12, "\(divergence)")
        // A fit too short for the running check is judged at its end.
        configuration.maxIterations = 4
        var short = ParameterServerState(
            configuration: configuration, objective: Objective(kind: .linearRegression, features: 2, classes: []))
        _ = short.join(1, rows: 10)
        for clock in 0..<4 {
            _ = short.requestStart(1, clock: clock)
            _ = short.push(1, clock: clock, rows: 10, loss: clock == 0 ? 1.0 : 4.0) { _, _ in }
        }
        #expect(
            short.divergence?.cause.contains("did not learn") == true,
            "\(short.divergence.map(String.init(describing:)) ?? "none")")
    }

    @Test("a fit that converges is not flagged")
    func healthyFit() {
        let state = Self.run(Self.configuration(eta0: 1e-4))
        #expect(state.divergence == nil && state.backoffs.isEmpty)
        #expect(state.completedIterations == 300)
    }
}
