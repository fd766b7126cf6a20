import COpenBLAS

/// The hidden layers' non-linearity.
public enum Activation: String, Sendable, Codable, CaseIterable {
    case relu, tanh
}

/// The output layer and its loss: softmax with cross-entropy over K classes, a logistic unit with log
/// loss for two, or a linear unit with half the squared error (regression).
public enum OutputHead: Sendable, Codable, Equatable {
    case softmax(classes: Int)
    case logistic
    case linear

    var outputs: Int {
        if case .softmax(let classes) = self { return classes }
        return 1
    }
}

/// A fully connected network whose parameters are one flat float32 vector, so that everything the
/// parameter server does with a linear model's weights (BSP, SSP, mini-batches, local SGD) applies
/// unchanged. Layout: for each layer l with n inputs and m outputs, W_l (m × n, row-major), then b_l (m).
/// Forward and backward passes are matrix products through OpenBLAS's `cblas_sgemm`.
public struct MLP: Sendable, Equatable {
    /// Inputs, the hidden layers' widths, outputs.
    public let layerSizes: [Int]
    public let activation: Activation
    public let head: OutputHead
    /// Where each layer's weights and biases start in the flat vector.
    let offsets: [(weights: Int, bias: Int)]
    public let parameterCount: Int

    public static func == (a: MLP, b: MLP) -> Bool {
        a.layerSizes == b.layerSizes && a.activation == b.activation && a.head == b.head
    }

    public init(inputs: Int, hidden: [Int], activation: Activation, head: OutputHead) throws(InvalidSetting) {
        guard inputs >= 1 else { throw InvalidSetting("an MLP needs at least one input feature") }
        if let index = hidden.firstIndex(where: { $0 < 1 }) {
            throw InvalidSetting(
                "hidden layer \(index + 1) has \(hidden[index]) units: every hidden layer needs at least 1")
        }
        if case .softmax(let classes) = head, classes < 2 {
            throw InvalidSetting("a softmax head needs at least 2 classes")
        }
        layerSizes = [inputs] + hidden + [head.outputs]
        self.activation = activation
        self.head = head
        var offsets: [(weights: Int, bias: Int)] = []
        var position = 0
        for layer in 0..<(layerSizes.count - 1) {
            let (n, m) = (layerSizes[layer], layerSizes[layer + 1])
            offsets.append((position, position + m * n))
            position += m * n + m
        }
        self.offsets = offsets
        parameterCount = position
    }

    var layers: Int { layerSizes.count - 1 }

    /// Every layer's weight matrix in the flat vector (the biases excluded): what a penalty applies to.
    public var weightRanges: [Range<Int>] {
        (0..<layers).map { offsets[$0].weights..<offsets[$0].bias }
    }

    /// "64-256-256-10 relu, softmax": the architecture as logs and reports show it.
    public var summary: String {
        let headName =
            switch head {
            case .softmax: "softmax"
            case .logistic: "logistic"
            case .linear: "linear"
            }
        return layerSizes.map(String.init).joined(separator: "-") + " \(activation.rawValue), \(headName)"
    }

    /// Seeded initial weights: He (normal, variance 2 / fan-in) for ReLU layers, Glorot (uniform,
    /// ±√(6 / (fan-in + fan-out))) for tanh layers and the output layer; biases zero.
    public func initialWeights(seed: UInt64) -> [Float] {
        var random = SplitMix64(seed: seed)
        var weights = [Float](repeating: 0, count: parameterCount)
        for layer in 0..<layers {
            let (n, m) = (layerSizes[layer], layerSizes[layer + 1])
            let start = offsets[layer].weights
            let output = layer == layers - 1
            for index in 0..<(m * n) {
                if activation == .relu && !output {
                    weights[start + index] = Float(random.normal() * (2 / Double(n)).squareRoot())
                } else {
                    let limit = (6 / Double(n + m)).squareRoot()
                    weights[start + index] = Float((random.unit() * 2 - 1) * limit)
                }
            }
        }
        return weights
    }

    /// The network's outputs for `rows` rows of `x` (row-major, `inputs` wide): class probabilities
    /// (softmax), P(class 1) (logistic) or values (linear), `outputs` per row.
    public func predict(weights: [Float], x: UnsafeBufferPointer<Float>, rows: Int) -> [Float] {
        var pass = Pass(self, rows: rows)
        pass.forward(weights: weights, x: x)
        return pass.outputs()
    }

    /// The mean loss over the rows and its gradient (mean over the rows, written into `gradient`,
    /// `parameterCount` long). Labels: class indices 0…K−1 (softmax), 0/1 (logistic), values (linear).
    public func lossAndGradient(
        weights: [Float], x: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Float>, rows: Int,
        gradient: inout [Float]
    ) -> Double {
        precondition(weights.count == parameterCount && gradient.count == parameterCount && labels.count >= rows)
        guard rows > 0 else {
            for index in gradient.indices { gradient[index] = 0 }
            return 0
        }
        var pass = Pass(self, rows: rows)
        pass.forward(weights: weights, x: x)
        let loss = pass.outputDelta(labels: labels)
        pass.backward(weights: weights, x: x, gradient: &gradient)
        return loss
    }

    /// Threads OpenBLAS may use for one product. Workers are processes sharing the machine's cores:
    /// one each by default (`chimera worker --blas-threads`; or OPENBLAS_NUM_THREADS).
    public static func setBLASThreads(_ threads: Int) { openblas_set_num_threads(Int32(max(threads, 1))) }
}

/// The activations of one forward pass and the deltas of its backward pass.
struct Pass {
    let network: MLP
    let rows: Int
    /// Pre-activations Z_l and activations A_l of every layer, row-major [rows × width].
    var z: [[Float]]
    var a: [[Float]]
    /// ∂loss/∂Z of the layer being back-propagated.
    var delta: [Float] = []

    init(_ network: MLP, rows: Int) {
        self.network = network
        self.rows = rows
        z = network.layerSizes.dropFirst().map { [Float](repeating: 0, count: rows * $0) }
        a = z
    }

    mutating func forward(weights: [Float], x: UnsafeBufferPointer<Float>) {
        let sizes = network.layerSizes
        for layer in 0..<network.layers {
            let (n, m) = (sizes[layer], sizes[layer + 1])
            let offset = network.offsets[layer]
            var out = [Float](repeating: 0, count: rows * m)
            // Z = bias (broadcast), then Z += A_in · Wᵀ.
            for row in 0..<rows {
                for unit in 0..<m { out[row * m + unit] = weights[offset.bias + unit] }
            }
            let previous = layer == 0 ? [] : a[layer - 1]
            let rows = rows
            func product(_ input: UnsafePointer<Float>) {
                weights.withUnsafeBufferPointer { w in
                    out.withUnsafeMutableBufferPointer { c in
                        cblas_sgemm(
                            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(m), Int32(n), 1, input,
                            Int32(n),
                            w.baseAddress! + offset.weights, Int32(n), 1, c.baseAddress!, Int32(m))
                    }
                }
            }
            if layer == 0 {
                product(x.baseAddress!)
            } else {
                previous.withUnsafeBufferPointer { product($0.baseAddress!) }
            }
            z[layer] = out
            if layer < network.layers - 1 { activate(layer) } else { a[layer] = out }
        }
    }

    /// The hidden layer's activation, in place.
    private mutating func activate(_ layer: Int) {
        let source = z[layer]
        switch network.activation {
        case .relu: a[layer] = source.map { max($0, 0) }
        case .tanh: a[layer] = source.map { Float(LibM.tanh(Double($0))) }
        }
    }

    /// The head's outputs from the last layer's pre-activations.
    func outputs() -> [Float] {
        let logits = z[network.layers - 1]
        switch network.head {
        case .linear: return logits
        case .logistic: return logits.map { 1 / (1 + Float(LibM.exp(-Double($0)))) }
        case .softmax(let classes):
            var out = logits
            for row in 0..<rows { Self.softmax(&out, from: row * classes, count: classes) }
            return out
        }
    }

    static func softmax(_ values: inout [Float], from start: Int, count: Int) {
        var largest = -Float.infinity
        for index in start..<(start + count) { largest = max(largest, values[index]) }
        var sum = 0.0
        for index in start..<(start + count) {
            let e = LibM.exp(Double(values[index] - largest))
            values[index] = Float(e)
            sum += e
        }
        for index in start..<(start + count) { values[index] = Float(Double(values[index]) / sum) }
    }

    /// The mean loss, and ∂(mean loss)/∂Z of the output layer into `delta`.
    mutating func outputDelta(labels: UnsafeBufferPointer<Float>) -> Double {
        let logits = z[network.layers - 1]
        let scale = 1 / Float(rows)
        var loss = 0.0
        switch network.head {
        case .linear:
            delta = (0..<rows).map { row in
                let error = logits[row] - labels[row]
                loss += 0.5 * Double(error) * Double(error)
                return error * scale
            }
        case .logistic:
            delta = (0..<rows).map { row in
                let logit = Double(logits[row])
                let y = Double(labels[row])
                // log(1 + e^z) − y·z, computed without overflow.
                loss += max(logit, 0) - logit * y + LibM.log1p(LibM.exp(-abs(logit)))
                return Float((1 / (1 + LibM.exp(-logit)) - y)) * scale
            }
        case .softmax(let classes):
            delta = outputs()
            for row in 0..<rows {
                let label = Int(labels[row])
                loss -= LibM.log(max(Double(delta[row * classes + label]), 1e-300))
                delta[row * classes + label] -= 1
            }
            for index in delta.indices { delta[index] *= scale }
        }
        return loss / Double(rows)
    }

    /// Back-propagates `delta` from the output layer, writing every layer's gradient.
    mutating func backward(weights: [Float], x: UnsafeBufferPointer<Float>, gradient: inout [Float]) {
        let sizes = network.layerSizes
        let rows = rows
        for layer in stride(from: network.layers - 1, through: 0, by: -1) {
            let (n, m) = (sizes[layer], sizes[layer + 1])
            let offset = network.offsets[layer]
            let previous = layer == 0 ? [] : a[layer - 1]
            let d = delta
            // dW = deltaᵀ · A_in (m × n); db = the column sums of delta.
            func weightGradient(_ input: UnsafePointer<Float>) {
                d.withUnsafeBufferPointer { dp in
                    gradient.withUnsafeMutableBufferPointer { g in
                        cblas_sgemm(
                            CblasRowMajor, CblasTrans, CblasNoTrans, Int32(m), Int32(n), Int32(rows), 1,
                            dp.baseAddress!, Int32(m),
                            input, Int32(n), 0, g.baseAddress! + offset.weights, Int32(n))
                    }
                }
            }
            if layer == 0 {
                weightGradient(x.baseAddress!)
            } else {
                previous.withUnsafeBufferPointer { weightGradient($0.baseAddress!) }
            }
            for unit in 0..<m { gradient[offset.bias + unit] = 0 }
            for row in 0..<rows {
                for unit in 0..<m { gradient[offset.bias + unit] += d[row * m + unit] }
            }
            guard layer > 0 else { break }
            // delta_in = (delta · W) ⊙ act'(Z_in).
            var next = [Float](repeating: 0, count: rows * n)
            d.withUnsafeBufferPointer { dp in
                weights.withUnsafeBufferPointer { w in
                    next.withUnsafeMutableBufferPointer { out in
                        cblas_sgemm(
                            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(n), Int32(m), 1,
                            dp.baseAddress!, Int32(m),
                            w.baseAddress! + offset.weights, Int32(n), 0, out.baseAddress!, Int32(n))
                    }
                }
            }
            let zIn = z[layer - 1]
            switch network.activation {
            case .relu: for index in next.indices where zIn[index] <= 0 { next[index] = 0 }
            case .tanh: for index in next.indices { next[index] *= 1 - previous[index] * previous[index] }
            }
            delta = next
        }
    }
}

extension SplitMix64 {
    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Standard normal (Box–Muller).
    mutating func normal() -> Double {
        let u1 = max(unit(), 1e-300)
        let u2 = unit()
        return (-2 * LibM.log(u1)).squareRoot() * LibM.cos(2 * Double.pi * u2)
    }
}
