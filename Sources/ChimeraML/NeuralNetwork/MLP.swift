import COpenBLAS

#if canImport(Glibc)
    import Glibc
#endif

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

/// The activations of one forward pass and the deltas of its backward pass. Every layer's Z and A
/// live in one allocation and the element-wise loops run on raw pointers: at a 64-row batch these
/// loops, not the products, were a third of a step.
struct Pass {
    let network: MLP
    let rows: Int
    /// Pre-activations Z_l (every layer) and activations A_l (hidden layers), row-major [rows × width].
    var storage: [Float]
    let zStart: [Int]
    let aStart: [Int]
    /// ∂loss/∂Z of the layer being back-propagated, and the one below it.
    var delta: [Float]
    var below: [Float]

    init(_ network: MLP, rows: Int) {
        self.network = network
        self.rows = rows
        let widths = Array(network.layerSizes.dropFirst())
        var position = 0
        var zStart: [Int] = []
        var aStart: [Int] = []
        for (layer, width) in widths.enumerated() {
            zStart.append(position)
            position += rows * width
            aStart.append(position)
            if layer < widths.count - 1 { position += rows * width }
        }
        self.zStart = zStart
        self.aStart = aStart
        storage = [Float](repeating: 0, count: position)
        let widest = network.layerSizes.max() ?? 1
        delta = [Float](repeating: 0, count: rows * widest)
        below = delta
    }

    mutating func forward(weights: [Float], x: UnsafeBufferPointer<Float>) {
        let sizes = network.layerSizes
        let (rows, layers, activation) = (rows, network.layers, network.activation)
        let (zStart, aStart, offsets) = (zStart, aStart, network.offsets)
        storage.withUnsafeMutableBufferPointer { buffer in
            weights.withUnsafeBufferPointer { w in
                let s = buffer.baseAddress!
                for layer in 0..<layers {
                    let (n, m) = (sizes[layer], sizes[layer + 1])
                    let out = s + zStart[layer]
                    let bias = w.baseAddress! + offsets[layer].bias
                    // Z = bias (broadcast), then Z += A_in · Wᵀ.
                    for row in 0..<rows { (out + row * m).update(from: bias, count: m) }
                    let input = layer == 0 ? UnsafePointer(x.baseAddress!) : UnsafePointer(s + aStart[layer - 1])
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(m), Int32(n), 1, input, Int32(n),
                        w.baseAddress! + offsets[layer].weights, Int32(n), 1, out, Int32(m))
                    guard layer < layers - 1 else { break }
                    let a = s + aStart[layer]
                    switch activation {
                    case .relu: for i in 0..<(rows * m) { a[i] = max(out[i], 0) }
                    case .tanh: for i in 0..<(rows * m) { a[i] = tanhf(out[i]) }
                    }
                }
            }
        }
    }

    /// The output layer's pre-activations (logits), a copy.
    var logits: [Float] {
        let start = zStart[network.layers - 1]
        return Array(storage[start..<(start + rows * network.head.outputs)])
    }

    /// The head's outputs from the last layer's pre-activations.
    func outputs() -> [Float] {
        let logits = logits
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
        let logits = logits
        let scale = 1 / Float(rows)
        var loss = 0.0
        switch network.head {
        case .linear:
            for row in 0..<rows {
                let error = logits[row] - labels[row]
                loss += 0.5 * Double(error) * Double(error)
                delta[row] = error * scale
            }
        case .logistic:
            for row in 0..<rows {
                let logit = Double(logits[row])
                let y = Double(labels[row])
                // log(1 + e^z) − y·z, computed without overflow.
                loss += max(logit, 0) - logit * y + LibM.log1p(LibM.exp(-abs(logit)))
                delta[row] = Float((1 / (1 + LibM.exp(-logit)) - y)) * scale
            }
        case .softmax(let classes):
            let probabilities = outputs()
            for row in 0..<rows {
                let label = Int(labels[row])
                loss -= LibM.log(max(Double(probabilities[row * classes + label]), 1e-300))
                for unit in 0..<classes {
                    let index = row * classes + unit
                    delta[index] = (probabilities[index] - (unit == label ? 1 : 0)) * scale
                }
            }
        }
        return loss / Double(rows)
    }

    /// Back-propagates `delta` from the output layer, writing every layer's gradient.
    mutating func backward(weights: [Float], x: UnsafeBufferPointer<Float>, gradient: inout [Float]) {
        let sizes = network.layerSizes
        let (rows, layers, activation) = (rows, network.layers, network.activation)
        let (zStart, aStart, offsets) = (zStart, aStart, network.offsets)
        storage.withUnsafeBufferPointer { buffer in
            weights.withUnsafeBufferPointer { w in
                gradient.withUnsafeMutableBufferPointer { g in
                    delta.withUnsafeMutableBufferPointer { deltaBuffer in
                        below.withUnsafeMutableBufferPointer { belowBuffer in
                            let s = buffer.baseAddress!
                            var d = deltaBuffer.baseAddress!
                            var next = belowBuffer.baseAddress!
                            for layer in stride(from: layers - 1, through: 0, by: -1) {
                                let (n, m) = (sizes[layer], sizes[layer + 1])
                                let input = layer == 0 ? x.baseAddress! : s + aStart[layer - 1]
                                // dW = deltaᵀ · A_in (m × n); db = the column sums of delta.
                                cblas_sgemm(
                                    CblasRowMajor, CblasTrans, CblasNoTrans, Int32(m), Int32(n), Int32(rows), 1, d,
                                    Int32(m), input, Int32(n), 0, g.baseAddress! + offsets[layer].weights, Int32(n))
                                let db = g.baseAddress! + offsets[layer].bias
                                db.update(repeating: 0, count: m)
                                for row in 0..<rows {
                                    let line = d + row * m
                                    for unit in 0..<m { db[unit] += line[unit] }
                                }
                                guard layer > 0 else { break }
                                // delta_in = (delta · W) ⊙ act'(Z_in).
                                cblas_sgemm(
                                    CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(n), Int32(m), 1, d,
                                    Int32(m), w.baseAddress! + offsets[layer].weights, Int32(n), 0, next, Int32(n))
                                let zIn = s + zStart[layer - 1]
                                let aIn = s + aStart[layer - 1]
                                switch activation {
                                case .relu: for i in 0..<(rows * n) { next[i] = zIn[i] > 0 ? next[i] : 0 }
                                case .tanh: for i in 0..<(rows * n) { next[i] *= 1 - aIn[i] * aIn[i] }
                                }
                                swap(&d, &next)
                            }
                        }
                    }
                }
            }
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
