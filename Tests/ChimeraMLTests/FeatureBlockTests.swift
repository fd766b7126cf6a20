import ChimeraML
import Testing

/// Feature-partitioned linear models in one process: the blocks' gradients are the whole model's.
@Suite("Feature blocks")
struct FeatureBlockTests {
    @Test(
        "partial margins summed with the bias give every block its share of the full-batch loss and gradient",
        arguments: [ModelKind.linearRegression, .logisticRegression, .softmax, .linearSVM], [1, 2, 3, 7])
    func blocksEqualWholeModel(kind: ModelKind, parts: Int) throws {
        var spec = SyntheticData.Specification()
        spec.rows = 97
        spec.features = 7
        spec.classes = kind == .softmax ? 4 : 2
        spec.task = kind == .linearRegression ? .regression : .classification
        let data = SyntheticData.generate(spec)
        let classes: [Float] = kind == .linearRegression ? [] : data.distinctLabels
        let objective = Objective(kind: kind, features: 7, classes: classes)
        var random = SplitMix64(seed: 4)
        let weights = (0..<objective.weightCount).map { _ in Float(Double(random.next() % 2000) / 2000 - 0.5) }
        var reference = [Float](repeating: 0, count: objective.weightCount)
        let expected = objective.lossAndGradient(weights: weights, data: data, gradient: &reference)

        let blocks = FeatureBlock.blocks(features: 7, parts: parts).map {
            FeatureBlock(objective: objective, columns: $0)
        }
        #expect(blocks.map(\.columns.count).reduce(0, +) == 7)
        func columns(_ range: Range<Int>) -> Dataset {
            let features = (0..<data.rows).flatMap { row in
                data.features[(row * 7 + range.lowerBound)..<(row * 7 + range.upperBound)]
            }
            return Dataset(featureNames: Array(data.featureNames[range]), features: features, labels: data.labels)
        }
        var margins = [Float](repeating: 0, count: data.rows * objective.outputs)
        for block in blocks {
            let partial = block.partialMargins(
                blockWeights: block.blockWeights(of: weights), data: columns(block.columns))
            for index in margins.indices { margins[index] += partial[index] }
        }
        blocks[0].addBias(&margins, weights: weights)
        var assembled = [Float](repeating: 0, count: objective.weightCount)
        for block in blocks {
            var gradient = [Float](repeating: 0, count: block.gradientShape.reduce(1, *))
            let loss = block.lossAndGradient(margins: margins, data: columns(block.columns), gradient: &gradient)
            #expect(abs(loss - expected) < 1e-5, "\(kind) loss \(loss) vs \(expected)")
            let width = block.columns.count
            for o in 0..<objective.outputs {
                for j in 0..<width { assembled[o * 8 + block.columns.lowerBound + j] = gradient[o * (width + 1) + j] }
                assembled[o * 8 + 7] = gradient[o * (width + 1) + width]
            }
        }
        let worst = zip(assembled, reference).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-5, "\(kind) with \(parts) blocks: largest gradient difference \(worst)")
    }
}
