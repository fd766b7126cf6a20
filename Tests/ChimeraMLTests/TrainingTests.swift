import ChimeraML
import Testing

/// Drives the master's state machine as N BSP workers would, computing each shard's gradient in process.
func trainBSP(shards: [Dataset], objective: Objective, configuration: TrainingConfiguration) -> ParameterServerState {
    var master = ParameterServerState(configuration: configuration, objective: objective)
    for (index, shard) in shards.enumerated() { _ = master.join(UInt32(index), rows: shard.rows) }
    var gradient = [Float](repeating: 0, count: objective.weightCount)
    while !master.isDone {
        let weights = master.weights
        let clock = master.completedIterations
        for (index, _) in shards.enumerated() { _ = master.requestStart(UInt32(index), clock: clock) }
        for (index, shard) in shards.enumerated() {
            let loss = objective.lossAndGradient(weights: weights, data: shard, gradient: &gradient)
            let (outcome, _) = master.push(UInt32(index), clock: clock, rows: shard.rows, loss: loss) { into, scale in
                for i in into.indices { into[i] += scale * gradient[i] }
            }
            #expect(outcome == .accepted)
        }
    }
    return master
}

/// Plain full-batch gradient descent on one dataset, the reference BSP must equal.
func fullBatchGD(data: Dataset, objective: Objective, configuration: TrainingConfiguration) -> [Float] {
    var weights = [Float](repeating: 0, count: objective.weightCount)
    var gradient = weights
    var optimizer = Optimizer(configuration, weightCount: weights.count)
    let regularizer = Regularizer(configuration)
    for _ in 0..<configuration.maxIterations {
        _ = objective.lossAndGradient(weights: weights, data: data, gradient: &gradient)
        _ = regularizer.apply(weights: weights, penalized: objective.penalized, gradient: &gradient)
        optimizer.step(weights: &weights, gradient: gradient)
    }
    return weights
}

func maxRelativeDifference(_ a: [Float], _ b: [Float]) -> Float {
    let scale = max(b.map(abs).max() ?? 1, 1e-6)
    return zip(a, b).map { abs($0 - $1) }.max()! / scale
}

@Suite("Training semantics")
struct TrainingTests {
    @Test(
        "BSP with 1, 2 and 4 workers equals full-batch gradient descent on the union",
        arguments: [
            (ModelKind.linearRegression, 1), (.linearRegression, 2), (.linearRegression, 4),
            (.logisticRegression, 1), (.logisticRegression, 2), (.logisticRegression, 4),
        ])
    func bspEqualsFullBatch(kind: ModelKind, workers: Int) {
        var spec = SyntheticData.Specification()
        spec.task = kind == .linearRegression ? .regression : .classification
        spec.rows = 1_003
        spec.features = 7
        spec.seed = 11
        let data = SyntheticData.generate(spec)
        let objective = Objective(kind: kind, features: 7, classes: kind.isClassifier ? [0, 1] : [])
        var configuration = TrainingConfiguration()
        configuration.model = kind
        configuration.maxIterations = 60
        configuration.eta0 = 0.05
        configuration.momentum = 0.5
        let reference = fullBatchGD(data: data, objective: objective, configuration: configuration)
        let master = trainBSP(
            shards: SyntheticData.partition(data, parts: workers), objective: objective, configuration: configuration)
        #expect(master.completedIterations == 60)
        #expect(maxRelativeDifference(master.weights, reference) < 1e-5)
        #expect(master.stalenessHistogram.count == 1, "BSP never runs ahead")
    }

    @Test("gradients match finite differences", arguments: ModelKind.allCases.filter { $0 != .mlp })
    func gradientCheck(kind: ModelKind) {
        var spec = SyntheticData.Specification()
        spec.task = kind == .linearRegression ? .regression : .classification
        spec.classes = kind == .softmax ? 3 : 2
        spec.rows = 50
        spec.features = 4
        let data = SyntheticData.generate(spec)
        let classes: [Float] = kind == .linearRegression ? [] : (kind == .softmax ? [0, 1, 2] : [0, 1])
        let objective = Objective(kind: kind, features: 4, classes: classes)
        var random = SplitMix64(seed: 3)
        let weights = (0..<objective.weightCount).map { _ in random.nextGaussian() * 0.3 }
        var gradient = weights
        _ = objective.lossAndGradient(weights: weights, data: data, gradient: &gradient)
        var scratch = weights
        for index in weights.indices {
            var plus = weights
            var minus = weights
            plus[index] += 1e-2
            minus[index] -= 1e-2
            let numeric =
                (objective.lossAndGradient(weights: plus, data: data, gradient: &scratch)
                    - objective.lossAndGradient(weights: minus, data: data, gradient: &scratch)) / 2e-2
            #expect(abs(Double(gradient[index]) - numeric) < 2e-2 * max(1, abs(numeric)), "weight \(index)")
        }
    }

    @Test("softmax on a 5-class problem matches a single-process run within one point")
    func softmaxLearns() {
        var spec = SyntheticData.Specification()
        spec.classes = 5
        spec.rows = 4_000
        spec.features = 10
        spec.informative = 10
        let (train, test) = SyntheticData.split(SyntheticData.generate(spec), testFraction: 0.2, seed: 1)
        let objective = Objective(kind: .softmax, features: 10, classes: [0, 1, 2, 3, 4])
        var configuration = TrainingConfiguration()
        configuration.model = .softmax
        configuration.maxIterations = 100
        configuration.eta0 = 0.5
        let master = trainBSP(
            shards: SyntheticData.partition(train, parts: 3), objective: objective, configuration: configuration)
        let predicted = objective.predict(weights: master.weights, data: test)
        let accuracy = Double(zip(predicted, test.labels).filter { $0 == $1 }.count) / Double(test.rows)
        #expect(accuracy > 0.9)
        #expect(master.lossHistory.last! < master.lossHistory.first!)
        // The same optimiser in one process, on all the rows: within one point of accuracy.
        let single = fullBatchGD(data: train, objective: objective, configuration: configuration)
        let singlePredicted = objective.predict(weights: single, data: test)
        let singleAccuracy = Double(zip(singlePredicted, test.labels).filter { $0 == $1 }.count) / Double(test.rows)
        #expect(abs(accuracy - singleAccuracy) <= 0.01, "distributed \(accuracy), single process \(singleAccuracy)")
    }

    @Test("labels pick the model of a fit that names none")
    func labelKinds() {
        #expect(LabelKind(distinct: [0, 1]) == .binary)
        #expect(LabelKind(distinct: [-1, 1]).linearModel == .logisticRegression)
        #expect(LabelKind(distinct: [1]) == .binary, "one class: the classifier refuses it with a clear error")
        #expect(LabelKind(distinct: [0, 1, 2, 7]) == .multiclass)
        #expect(LabelKind(distinct: [0, 1, 2]).linearModel == .softmax)
        #expect(LabelKind(distinct: [0.5, 1, 2]) == .continuous)
        #expect(
            LabelKind(distinct: Set((0..<51).map(Float.init))) == .continuous, "51 whole numbers: a count, not classes")
        #expect(LabelKind(distinct: Set((0..<50).map(Float.init))) == .multiclass)
        #expect(LabelKind(distinct: [0.5, 1.5, 2.25]).linearModel == .linearRegression)
    }

    @Test("learning-rate schedules")
    func schedules() {
        var configuration = TrainingConfiguration()
        configuration.eta0 = 0.5
        configuration.powerT = 0.5
        configuration.schedule = .constant
        #expect(LearningRate(configuration).rate(at: 10) == 0.5)
        configuration.schedule = .inverseScaling
        #expect(abs(LearningRate(configuration).rate(at: 4) - 0.25) < 1e-12)
        configuration.schedule = .optimal
        let optimal = LearningRate(configuration)
        #expect(optimal.rate(at: 1) > optimal.rate(at: 100))
    }

    @Test("column moments merged across shards equal the whole")
    func moments() {
        var spec = SyntheticData.Specification()
        spec.rows = 101
        spec.features = 3
        let data = SyntheticData.generate(spec)
        let merged = SyntheticData.partition(data, parts: 4).map(ColumnMoments.init).reduce(
            ColumnMoments(columns: 3), +)
        let whole = ColumnMoments(data).standardizer
        #expect(zip(merged.standardizer.mean, whole.mean).allSatisfy { abs($0 - $1) < 1e-5 })
        let standardized = whole.apply(to: data)
        let check = ColumnMoments(standardized).standardizer
        #expect(check.mean.allSatisfy { abs($0) < 1e-4 })
        #expect(check.scale.allSatisfy { abs($0 - 1) < 1e-3 })
    }

    @Test("synthetic data is deterministic under a seed")
    func deterministic() {
        var spec = SyntheticData.Specification()
        spec.rows = 100
        #expect(SyntheticData.generate(spec) == SyntheticData.generate(spec))
        spec.seed = 2
        let other = SyntheticData.generate(spec)
        spec.seed = 1
        #expect(SyntheticData.generate(spec) != other)
    }
}

@Suite("Parameter-server state machine")
struct ParameterServerStateTests {
    static func state(staleness: Int?, iterations: Int = 10) -> ParameterServerState {
        var configuration = TrainingConfiguration()
        configuration.model = .linearRegression
        configuration.maxIterations = iterations
        configuration.staleness = staleness
        return ParameterServerState(
            configuration: configuration, objective: Objective(kind: .linearRegression, features: 2, classes: []))
    }

    static func push(_ state: inout ParameterServerState, _ worker: UInt32, _ clock: Int) -> [ParameterServerState
        .Reply]
    {
        let (outcome, replies) = state.push(worker, clock: clock, rows: 10, loss: 1) { into, scale in
            for i in into.indices { into[i] += scale * 0.1 }
        }
        #expect(outcome == .accepted)
        return replies
    }

    @Test("BSP: a parked request is answered when the round completes, after the update is applied")
    func parkedReleasedAfterRound() {
        var state = Self.state(staleness: 0)
        _ = state.join(1, rows: 10)
        _ = state.join(2, rows: 10)
        #expect(state.requestStart(1, clock: 0) == [.weights(worker: 1, done: false)])
        #expect(state.requestStart(2, clock: 0) == [.weights(worker: 2, done: false)])
        #expect(Self.push(&state, 1, 0).isEmpty)
        #expect(state.requestStart(1, clock: 1).isEmpty, "worker 1 must wait for worker 2")
        let weightsBefore = state.weights
        #expect(Self.push(&state, 2, 0) == [.weights(worker: 1, done: false)])
        #expect(state.weights != weightsBefore && state.version == 1)
    }

    @Test("a death releases the parked; the last iteration answers done")
    func deathAndDone() {
        var state = Self.state(staleness: 1, iterations: 2)
        _ = state.join(1, rows: 10)
        _ = state.join(2, rows: 10)
        _ = state.requestStart(1, clock: 0)
        _ = Self.push(&state, 1, 0)
        _ = state.requestStart(1, clock: 1)
        _ = Self.push(&state, 1, 1)
        #expect(state.requestStart(1, clock: 2) == [.weights(worker: 1, done: true)])
        #expect(state.leave(2).isEmpty)
        #expect(state.isDone)
    }

    @Test("an update for the wrong iteration is rejected and changes nothing")
    func staleRejected() {
        var state = Self.state(staleness: 0)
        _ = state.join(1, rows: 10)
        _ = state.requestStart(1, clock: 0)
        let before = state.weights
        let (outcome, _) = state.push(1, clock: 5, rows: 10, loss: 1) { into, _ in into[0] = 99 }
        guard case .rejected = outcome else {
            Issue.record("accepted a stale update")
            return
        }
        #expect(state.weights == before)
        // A non-finite loss is the worker's report of overflow: taken, and the fit ends diverged
        // with the weights it had.
        let (nan, _) = state.push(1, clock: 0, rows: 10, loss: .nan) { _, _ in }
        #expect(nan == .accepted)
        #expect(state.divergence != nil && state.isDone)
        #expect(state.weights == before)
    }
}

@Suite("Vectorised kernel accuracy")
struct KernelAccuracyTests {
    @Test(
        "logistic loss and gradient match a double-precision reference",
        arguments: [ModelKind.logisticRegression, .linearSVM, .linearRegression])
    func matchesReference(kind: ModelKind) {
        var spec = SyntheticData.Specification()
        spec.task = kind == .linearRegression ? .regression : .classification
        spec.rows = 1_001
        spec.features = 13
        let data = SyntheticData.generate(spec)
        let objective = Objective(kind: kind, features: 13, classes: kind.isClassifier ? [0, 1] : [])
        var random = SplitMix64(seed: 9)
        // Large weights push scores far into both tails, where exp and log1p are hardest.
        let weights = (0..<objective.weightCount).map { _ in random.nextGaussian() * 3 }
        var gradient = weights
        let loss = objective.lossAndGradient(weights: weights, data: data, gradient: &gradient)
        var referenceLoss = 0.0
        var referenceGradient = [Double](repeating: 0, count: weights.count)
        for row in 0..<data.rows {
            var s = Double(weights[13])
            for j in 0..<13 { s += Double(weights[j]) * Double(data.features[row * 13 + j]) }
            let label = Double(data.labels[row])
            let derivative: Double
            switch kind {
            case .logisticRegression:
                referenceLoss += max(s, 0) + LibM.log1p(LibM.exp(-abs(s))) - label * s
                derivative = 1 / (1 + LibM.exp(-s)) - label
            case .linearSVM:
                let y = label == 1 ? 1.0 : -1.0
                referenceLoss += max(0, 1 - y * s)
                derivative = y * s < 1 ? -y : 0
            default:
                referenceLoss += 0.5 * (s - label) * (s - label)
                derivative = s - label
            }
            for j in 0..<13 { referenceGradient[j] += derivative * Double(data.features[row * 13 + j]) }
            referenceGradient[13] += derivative
        }
        let n = Double(data.rows)
        #expect(abs(loss - referenceLoss / n) <= 1e-4 * max(1, abs(referenceLoss / n)))
        for (got, want) in zip(gradient, referenceGradient) {
            #expect(abs(Double(got) - want / n) <= 1e-4 * max(1, abs(want / n)))
        }
    }
}
