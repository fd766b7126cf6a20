import ChimeraML
import Testing

/// The MLP on the parameter server's state machine: the same rounds a cluster runs, in process.
@Suite("MLP training")
struct MLPTrainingTests {
    static func network(classes: Int, hidden: [Int] = [8, 5]) throws -> (Objective, TrainingConfiguration, Dataset) {
        var spec = SyntheticData.Specification()
        spec.rows = 601
        spec.features = 6
        spec.classes = classes
        spec.nonlinear = true
        spec.seed = 5
        let data = SyntheticData.generate(spec)
        var configuration = TrainingConfiguration()
        configuration.model = .mlp
        configuration.hidden = hidden
        configuration.maxIterations = 40
        configuration.eta0 = 0.05
        configuration.momentum = 0.9
        configuration.alpha = 1e-3
        configuration.batchSize = 16
        let objective = try Objective(
            configuration: configuration, features: 6, classes: (0..<classes).map(Float.init))
        return (objective, configuration, data)
    }

    @Test(
        "BSP with 1, 2 and 4 workers equals single-process mini-batch SGD on the same batches",
        arguments: [(3, 1), (3, 2), (3, 4), (2, 2), (2, 4)])
    func bspEqualsSingleProcess(classes: Int, workers: Int) throws {
        let (objective, configuration, data) = try Self.network(classes: classes)
        let shards = SyntheticData.partition(data, parts: workers)
        // Each worker draws its own mini-batches; the reference trains on their union, step for step.
        var draws = shards.indices.map { MinibatchSampler(rows: shards[$0].rows, seed: 100 + UInt64($0)) }
        var referenceDraws = draws
        var master = ParameterServerState(configuration: configuration, objective: objective)
        for (index, shard) in shards.enumerated() { _ = master.join(UInt32(index), rows: shard.rows) }
        var reference = objective.initialWeights(seed: configuration.seed)
        #expect(master.weights == reference)
        var optimizer = Optimizer(configuration, weightCount: reference.count)
        let regularizer = Regularizer(configuration)
        var gradient = [Float](repeating: 0, count: objective.weightCount)
        while !master.isDone {
            let weights = master.weights
            let clock = master.completedIterations
            for index in shards.indices { _ = master.requestStart(UInt32(index), clock: clock) }
            for (index, shard) in shards.enumerated() {
                let batch = draws[index].batch(of: shard, size: configuration.batchSize)
                let loss = objective.lossAndGradient(weights: weights, data: batch, gradient: &gradient)
                let (outcome, _) = master.push(UInt32(index), clock: clock, rows: batch.rows, loss: loss) {
                    into, scale in for i in into.indices { into[i] += scale * gradient[i] }
                }
                #expect(outcome == .accepted)
            }
            let union = shards.indices.map {
                referenceDraws[$0].batch(of: shards[$0], size: configuration.batchSize)
            }
            let batch = Dataset(
                featureNames: data.featureNames, features: union.flatMap(\.features), labels: union.flatMap(\.labels))
            _ = objective.lossAndGradient(weights: reference, data: batch, gradient: &gradient)
            _ = regularizer.apply(weights: reference, penalized: objective.penalized, gradient: &gradient)
            optimizer.step(weights: &reference, gradient: gradient)
        }
        #expect(master.completedIterations == 40)
        #expect(maxRelativeDifference(master.weights, reference) < 1e-5)
        #expect(master.lossHistory.last! < master.lossHistory.first!, "it learns")
    }

    @Test("the head follows the labels; the penalty reaches the weight matrices, never a bias")
    func headAndPenalty() throws {
        var configuration = TrainingConfiguration()
        configuration.model = .mlp
        configuration.hidden = [3]
        let softmax = try Objective(configuration: configuration, features: 2, classes: [0, 1, 2])
        let logistic = try Objective(configuration: configuration, features: 2, classes: [4, 7])
        let linear = try Objective(configuration: configuration, features: 2, classes: [])
        #expect(softmax.network?.head == .softmax(classes: 3) && softmax.isClassifier)
        #expect(logistic.network?.head == .logistic && logistic.isClassifier)
        #expect(linear.network?.head == .linear && !linear.isClassifier)
        // 2 → 3 → 3: W1 (6) b1 (3) W2 (9) b2 (3).
        #expect(softmax.weightCount == 21 && softmax.outputs == 1 && softmax.stride == 21)
        #expect(softmax.penalized == [0..<6, 9..<18])
        configuration.alpha = 0.5
        let weights = [Float](repeating: 1, count: 21)
        var gradient = [Float](repeating: 0, count: 21)
        _ = Regularizer(configuration).apply(weights: weights, penalized: softmax.penalized, gradient: &gradient)
        #expect(gradient == (0..<21).map { (0..<6).contains($0) || (9..<18).contains($0) ? 0.5 : 0 })
        // Logistic labels are the classes' values: 7 is class 1.
        let rows = Dataset(featureNames: ["a", "b"], features: [1, 2, 3, 4], labels: [4, 7])
        let probabilities = try #require(logistic.probabilities(weights: logistic.initialWeights(seed: 3), data: rows))
        #expect(probabilities.count == 4 && abs(probabilities[0] + probabilities[1] - 1) < 1e-6)
        #expect(
            logistic.predict(weights: logistic.initialWeights(seed: 3), data: rows).allSatisfy { $0 == 4 || $0 == 7 })
    }

    @Test("bad shapes are named: no hidden layer, a layer of 0, one class")
    func badShapes() {
        var configuration = TrainingConfiguration()
        configuration.model = .mlp
        configuration.hidden = [4, 0]
        #expect(throws: InvalidSetting("hidden layer 2 has 0 units: every hidden layer needs at least 1")) {
            try Objective(configuration: configuration, features: 3, classes: [0, 1])
        }
        configuration.hidden = [4]
        #expect(throws: InvalidSetting("an mlp classifier needs at least 2 classes, the labels have 1")) {
            try Objective(configuration: configuration, features: 3, classes: [1])
        }
    }
}
