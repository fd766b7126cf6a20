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

    /// Weight layers: the hidden layers and the output layer.
    public var layers: Int { layerSizes.count - 1 }

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
        weights.withUnsafeBufferPointer { pass.forward(weights: $0.baseAddress!, input: x.baseAddress!) }
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
        return weights.withUnsafeBufferPointer { w in
            gradient.withUnsafeMutableBufferPointer { g in
                pass.forward(weights: w.baseAddress!, input: x.baseAddress!)
                let loss = pass.outputDelta(labels: labels, scale: 1 / Float(rows))
                pass.backward(
                    weights: w.baseAddress!, input: x.baseAddress!, gradient: g.baseAddress!, accumulate: false,
                    inputGradient: nil)
                return loss
            }
        }
    }

    /// Where layers `layers` keep their parameters in the flat vector (contiguous: a pipeline stage's share).
    public func parameterRange(layers: Range<Int>) -> Range<Int> {
        guard let first = layers.first, let last = layers.last else { return 0..<0 }
        return offsets[first].weights..<(offsets[last].bias + layerSizes[last + 1])
    }

    /// Threads OpenBLAS may use for one product. Workers are processes sharing the machine's cores:
    /// one each by default (`chimera worker --blas-threads`; or OPENBLAS_NUM_THREADS).
    public static func setBLASThreads(_ threads: Int) { openblas_set_num_threads(Int32(max(threads, 1))) }
}

/// The activations of one forward pass through layers `layers` (the whole network, or a pipeline
/// stage's share) and the deltas of its backward pass. Every layer's Z and A live in one allocation
/// and the element-wise loops run on raw pointers: at a 64-row batch these loops, not the products,
/// were a third of a step. Weight and gradient pointers point at the first layer's parameters.
public struct Pass {
    let network: MLP
    public let rows: Int
    public let layers: Range<Int>
    /// Pre-activations Z_l (every layer) and activations A_l (hidden layers), row-major [rows × width],
    /// indexed by layer − layers.lowerBound.
    var storage: [Float]
    let zStart: [Int]
    let aStart: [Int]
    /// ∂loss/∂Z of the layer being back-propagated, and the one below it.
    var delta: [Float]
    var below: [Float]

    public init(_ network: MLP, rows: Int, layers: Range<Int>? = nil) {
        let layers = layers ?? 0..<network.layers
        self.network = network
        self.rows = rows
        self.layers = layers
        var position = 0
        var zStart: [Int] = []
        var aStart: [Int] = []
        for layer in layers {
            let width = network.layerSizes[layer + 1]
            zStart.append(position)
            position += rows * width
            aStart.append(position)
            if layer < network.layers - 1 { position += rows * width }
        }
        self.zStart = zStart
        self.aStart = aStart
        storage = [Float](repeating: 0, count: position)
        let widest = network.layerSizes[layers.lowerBound...layers.upperBound].max() ?? 1
        delta = [Float](repeating: 0, count: rows * widest)
        below = delta
    }

    /// Ends with the network's output layer (holds the logits and the loss).
    public var isLast: Bool { layers.upperBound == network.layers }
    public var inputWidth: Int { network.layerSizes[layers.lowerBound] }
    public var outputWidth: Int { network.layerSizes[layers.upperBound] }
    /// Floats this pass holds for its backward pass (what a pipeline stage keeps per micro-batch).
    public var heldFloats: Int { storage.count }

    /// `input`: [rows × inputWidth] (the features for the first layer, else the stage below's output).
    public mutating func forward(weights w: UnsafePointer<Float>, input x: UnsafePointer<Float>) {
        let sizes = network.layerSizes
        let (rows, layers, activation, last) = (rows, layers, network.activation, network.layers - 1)
        let (zStart, aStart, offsets) = (zStart, aStart, network.offsets)
        let base = offsets[layers.lowerBound].weights
        storage.withUnsafeMutableBufferPointer { buffer in
            let s = buffer.baseAddress!
            for layer in layers {
                let local = layer - layers.lowerBound
                let (n, m) = (sizes[layer], sizes[layer + 1])
                let out = s + zStart[local]
                let bias = w + (offsets[layer].bias - base)
                // Z = bias (broadcast), then Z += A_in · Wᵀ.
                for row in 0..<rows { (out + row * m).update(from: bias, count: m) }
                let input = local == 0 ? x : UnsafePointer(s + aStart[local - 1])
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(m), Int32(n), 1, input, Int32(n),
                    w + (offsets[layer].weights - base), Int32(n), 1, out, Int32(m))
                guard layer < last else { break }
                let a = s + aStart[local]
                switch activation {
                case .relu: for i in 0..<(rows * m) { a[i] = max(out[i], 0) }
                case .tanh: for i in 0..<(rows * m) { a[i] = tanhf(out[i]) }
                }
            }
        }
    }

    /// A stage's output for the next stage: the activations of its last layer [rows × outputWidth].
    public func withOutput<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        precondition(!isLast, "the last stage's output is the loss")
        let start = aStart[layers.count - 1]
        return try storage.withUnsafeBufferPointer {
            try body(UnsafeBufferPointer(rebasing: $0[start..<(start + rows * outputWidth)]))
        }
    }

    /// The output layer's pre-activations (logits), a copy.
    var logits: [Float] {
        let start = zStart[layers.count - 1]
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

    /// The loss summed over the rows times `scale`, and ∂(that)/∂Z of the output layer into `delta`:
    /// `scale` 1/rows gives the mean; a pipeline's micro-batch takes 1/(the whole batch's rows), so
    /// that its micro-batches' gradients add up to the batch's mean gradient.
    public mutating func outputDelta(labels: UnsafeBufferPointer<Float>, scale: Float) -> Double {
        precondition(isLast, "only the last stage has the head")
        let logits = logits
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
        return loss * Double(scale)
    }

    /// A stage that is not the last: ∂loss/∂(its output activations) from the stage above, into
    /// ∂loss/∂Z of its last layer.
    public mutating func outputGradient(_ upstream: UnsafePointer<Float>) {
        precondition(!isLast, "the last stage's delta comes from its labels")
        let count = rows * outputWidth
        let activation = network.activation
        let local = layers.count - 1
        let (z, a) = (zStart[local], aStart[local])
        storage.withUnsafeBufferPointer { s in
            delta.withUnsafeMutableBufferPointer { d in
                switch activation {
                case .relu: for i in 0..<count { d[i] = s[z + i] > 0 ? upstream[i] : 0 }
                case .tanh: for i in 0..<count { d[i] = upstream[i] * (1 - s[a + i] * s[a + i]) }
                }
            }
        }
    }

    /// Back-propagates `delta` from the last layer of `layers` down, writing (or, `accumulate`, adding
    /// to) every layer's gradient; `inputGradient` (when given, [rows × inputWidth]) receives
    /// ∂loss/∂input for the stage below.
    public mutating func backward(
        weights w: UnsafePointer<Float>, input x: UnsafePointer<Float>, gradient g: UnsafeMutablePointer<Float>,
        accumulate: Bool, inputGradient: UnsafeMutablePointer<Float>?
    ) {
        let sizes = network.layerSizes
        let (rows, layers, activation) = (rows, layers, network.activation)
        let (zStart, aStart, offsets) = (zStart, aStart, network.offsets)
        let base = offsets[layers.lowerBound].weights
        let beta: Float = accumulate ? 1 : 0
        storage.withUnsafeBufferPointer { buffer in
            delta.withUnsafeMutableBufferPointer { deltaBuffer in
                below.withUnsafeMutableBufferPointer { belowBuffer in
                    let s = buffer.baseAddress!
                    var d = deltaBuffer.baseAddress!
                    var next = belowBuffer.baseAddress!
                    for layer in layers.reversed() {
                        let local = layer - layers.lowerBound
                        let (n, m) = (sizes[layer], sizes[layer + 1])
                        let input = local == 0 ? x : UnsafePointer(s + aStart[local - 1])
                        // dW = deltaᵀ · A_in (m × n); db = the column sums of delta.
                        cblas_sgemm(
                            CblasRowMajor, CblasTrans, CblasNoTrans, Int32(m), Int32(n), Int32(rows), 1, d,
                            Int32(m), input, Int32(n), beta, g + (offsets[layer].weights - base), Int32(n))
                        let db = g + (offsets[layer].bias - base)
                        if !accumulate { db.update(repeating: 0, count: m) }
                        for row in 0..<rows {
                            let line = d + row * m
                            for unit in 0..<m { db[unit] += line[unit] }
                        }
                        let wanted = local > 0 ? next : inputGradient
                        guard let wanted else { break }
                        // delta_in = (delta · W) ⊙ act'(Z_in); below the stage's first layer, without act'.
                        cblas_sgemm(
                            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(n), Int32(m), 1, d,
                            Int32(m), w + (offsets[layer].weights - base), Int32(n), 0, wanted, Int32(n))
                        guard local > 0 else { break }
                        let zIn = s + zStart[local - 1]
                        let aIn = s + aStart[local - 1]
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
