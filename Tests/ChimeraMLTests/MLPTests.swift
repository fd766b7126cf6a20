import ChimeraML
import Glibc
import Testing

/// The multi-layer perceptron's passes (OpenBLAS matrix products), checked against a plain
/// double-precision reference written here.
@Suite("MLP")
struct MLPTests {
    /// The same network in double precision, naive loops: the mean loss at `weights`.
    static func referenceLoss(_ network: MLP, _ weights: [Double], _ x: [Double], _ labels: [Double], rows: Int)
        -> Double
    {
        let sizes = network.layerSizes
        var activations = x
        var total = 0.0
        var position = 0
        var layerValues: [Double] = []
        for layer in 0..<(sizes.count - 1) {
            let (n, m) = (sizes[layer], sizes[layer + 1])
            let w = Array(weights[position..<(position + m * n)])
            let b = Array(weights[(position + m * n)..<(position + m * n + m)])
            position += m * n + m
            var z = [Double](repeating: 0, count: rows * m)
            for row in 0..<rows {
                for unit in 0..<m {
                    var sum = b[unit]
                    for input in 0..<n { sum += activations[row * n + input] * w[unit * n + input] }
                    z[row * m + unit] = sum
                }
            }
            if layer < sizes.count - 2 {
                activations = z.map { network.activation == .relu ? max($0, 0) : tanh($0) }
            } else {
                layerValues = z
            }
        }
        for row in 0..<rows {
            switch network.head {
            case .linear:
                let error = layerValues[row] - labels[row]
                total += 0.5 * error * error
            case .logistic:
                let p = 1 / (1 + exp(-layerValues[row]))
                total -= labels[row] == 1 ? log(p) : log(1 - p)
            case .softmax(let classes):
                let logits = Array(layerValues[(row * classes)..<((row + 1) * classes)])
                let largest = logits.max()!
                let sum = logits.reduce(0) { $0 + exp($1 - largest) }
                total -= logits[Int(labels[row])] - largest - log(sum)
            }
        }
        return total / Double(rows)
    }

    static func data(rows: Int, inputs: Int, head: OutputHead, seed: UInt64) -> (x: [Float], labels: [Float]) {
        var random = SplitMix64(seed: seed)
        let x = (0..<(rows * inputs)).map { _ in Float(Double(random.next() % 2001) / 1000 - 1) }
        let labels: [Float] = (0..<rows).map { _ in
            switch head {
            case .linear: Float(Double(random.next() % 2001) / 1000 - 1)
            case .logistic: Float(random.next() % 2)
            case .softmax(let classes): Float(random.next() % UInt64(classes))
            }
        }
        return (x, labels)
    }

    @Test(
        "every layer's gradient matches finite differences of a double-precision reference, for each activation and head",
        arguments: [Activation.relu, .tanh], [OutputHead.softmax(classes: 3), .logistic, .linear])
    func gradients(activation: Activation, head: OutputHead) throws {
        let network = try MLP(inputs: 4, hidden: [5, 3], activation: activation, head: head)
        let rows = 7
        let (x, labels) = Self.data(rows: rows, inputs: 4, head: head, seed: 3)
        // Biases away from zero so no ReLU sits exactly at its kink.
        var weights = network.initialWeights(seed: 11)
        for index in weights.indices where weights[index] == 0 { weights[index] = 0.05 }
        var gradient = [Float](repeating: 0, count: network.parameterCount)
        let loss = x.withUnsafeBufferPointer { xs in
            labels.withUnsafeBufferPointer { ys in
                network.lossAndGradient(weights: weights, x: xs, labels: ys, rows: rows, gradient: &gradient)
            }
        }
        let reference = weights.map(Double.init)
        let xd = x.map(Double.init)
        let yd = labels.map(Double.init)
        let referenceValue = Self.referenceLoss(network, reference, xd, yd, rows: rows)
        #expect(abs(loss - referenceValue) <= 1e-5 * max(1, abs(referenceValue)), "loss \(loss) vs \(referenceValue)")
        let step = 1e-6
        var worst = 0.0
        for index in reference.indices {
            var plus = reference
            var minus = reference
            plus[index] += step
            minus[index] -= step
            let numeric =
                (Self.referenceLoss(network, plus, xd, yd, rows: rows)
                    - Self.referenceLoss(network, minus, xd, yd, rows: rows)) / (2 * step)
            worst = max(worst, abs(Double(gradient[index]) - numeric) / max(1e-3, abs(numeric)))
        }
        #expect(worst < 1e-3, "largest relative gradient error \(worst)")
    }

    @Test("the flat vector's size, seeded initialisation, and predictions of each head")
    func shapesAndPredictions() throws {
        let network = try MLP(inputs: 3, hidden: [4], activation: .relu, head: .softmax(classes: 2))
        #expect(network.parameterCount == 4 * 3 + 4 + 2 * 4 + 2)
        #expect(network.initialWeights(seed: 1) == network.initialWeights(seed: 1))
        #expect(network.initialWeights(seed: 1) != network.initialWeights(seed: 2))
        let x: [Float] = [0.1, -0.2, 0.3, 1, 0, -1]
        let probabilities = x.withUnsafeBufferPointer {
            network.predict(weights: network.initialWeights(seed: 1), x: $0, rows: 2)
        }
        #expect(probabilities.count == 4)
        #expect(
            abs(probabilities[0] + probabilities[1] - 1) < 1e-6 && abs(probabilities[2] + probabilities[3] - 1) < 1e-6)
    }

    @Test("a hidden layer of 0 units, or a softmax of one class, is an error naming it")
    func invalid() {
        #expect(throws: InvalidSetting("hidden layer 2 has 0 units: every hidden layer needs at least 1")) {
            try MLP(inputs: 3, hidden: [4, 0], activation: .relu, head: .linear)
        }
        #expect(throws: InvalidSetting.self) {
            try MLP(inputs: 3, hidden: [4], activation: .relu, head: .softmax(classes: 1))
        }
    }

    @Test("it learns XOR, which no linear model can: plain gradient descent on the four points")
    func learnsXOR() throws {
        let network = try MLP(inputs: 2, hidden: [8], activation: .tanh, head: .logistic)
        let x: [Float] = [0, 0, 0, 1, 1, 0, 1, 1]
        let labels: [Float] = [0, 1, 1, 0]
        var weights = network.initialWeights(seed: 5)
        var gradient = weights
        var loss = 0.0
        for _ in 0..<3_000 {
            loss = x.withUnsafeBufferPointer { xs in
                labels.withUnsafeBufferPointer { ys in
                    network.lossAndGradient(weights: weights, x: xs, labels: ys, rows: 4, gradient: &gradient)
                }
            }
            for index in weights.indices { weights[index] -= 0.5 * gradient[index] }
        }
        let predicted = x.withUnsafeBufferPointer { network.predict(weights: weights, x: $0, rows: 4) }
        #expect(loss < 0.05, "loss \(loss)")
        #expect(predicted.map { $0 > 0.5 ? Float(1) : 0 } == labels)
    }
}
