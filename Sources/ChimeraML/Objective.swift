/// Loss and gradient of a parameter-server model on rows of a dataset, with classes mapped to targets.
///
/// Linear models: weights are `outputs × (features + 1)`, row-major, the bias last in each row. An MLP:
/// its flat parameter vector (`MLP`), carried as one row of `parameterCount` values. The gradient
/// returned is the **mean** over the rows (the penalty is not included: the master adds it once).
public struct Objective: Sendable {
    public let kind: ModelKind
    public let features: Int
    public let classes: [Float]
    /// The network of an `mlp` model (its head chosen from `classes`).
    public let network: MLP?
    /// The weights the penalty applies to: never the biases.
    public let penalized: [Range<Int>]

    /// Rows of the weight tensor on the wire.
    public var outputs: Int { network == nil ? kind.outputs(classes: classes.count) : 1 }
    public var stride: Int { network?.parameterCount ?? features + 1 }
    public var weightCount: Int { outputs * stride }
    /// Whether predictions are classes (an MLP classifies when the job has classes).
    public var isClassifier: Bool { network == nil ? kind.isClassifier : !classes.isEmpty }

    /// "mlp 64-256-10 relu, softmax" or "softmax, 10 × 65 weights": the model as logs and errors name it.
    public var shapeSummary: String {
        if let network { return "mlp \(network.summary)" }
        return "\(kind.rawValue), \(outputs) × \(stride) weights"
    }

    /// Where a fit starts: zeros for a linear model (its loss is convex), a network's seeded random
    /// initialisation (zeros would leave every hidden unit the same).
    public func initialWeights(seed: UInt64) -> [Float] {
        network?.initialWeights(seed: seed) ?? [Float](repeating: 0, count: weightCount)
    }

    /// A linear model.
    public init(kind: ModelKind, features: Int, classes: [Float]) {
        precondition(kind != .mlp, "an mlp objective needs its network: init(configuration:features:classes:)")
        let stride = features + 1
        self.init(
            kind: kind, features: features, classes: classes, network: nil,
            penalized: (0..<kind.outputs(classes: classes.count)).map { ($0 * stride)..<($0 * stride + features) })
    }

    private init(kind: ModelKind, features: Int, classes: [Float], network: MLP?, penalized: [Range<Int>]) {
        self.kind = kind
        self.features = features
        self.classes = classes
        self.network = network
        self.penalized = penalized
    }

    /// The model `configuration` names, on `features` columns; `classes` empty for regression. For an
    /// MLP the head follows the classes: softmax for more than two, logistic for two, linear for none.
    public init(configuration: TrainingConfiguration, features: Int, classes: [Float]) throws(InvalidSetting) {
        guard configuration.model == .mlp else {
            self.init(kind: configuration.model, features: features, classes: classes)
            return
        }
        let head: OutputHead =
            switch classes.count {
            case 0: .linear
            case 1: throw InvalidSetting("an mlp classifier needs at least 2 classes, the labels have 1")
            case 2: .logistic
            default: .softmax(classes: classes.count)
            }
        let network = try MLP(
            inputs: features, hidden: configuration.hidden, activation: configuration.activation, head: head)
        self.init(
            kind: .mlp, features: features, classes: classes, network: network, penalized: network.weightRanges)
    }

    /// The class index of `label` (nil when it is not a known class).
    @inline(__always)
    func classIndex(_ label: Float) -> Int? {
        // classes are few: linear search beats hashing
        for (index, value) in classes.enumerated() where value == label { return index }
        return nil
    }

    /// Mean loss and mean gradient over `data`'s rows. `gradient` must hold `weightCount` values and is
    /// overwritten. Rows with a label outside `classes` count as an error: the caller validates first.
    public func lossAndGradient(weights: [Float], data: Dataset, gradient: inout [Float]) -> Double {
        precondition(weights.count == weightCount && gradient.count == weightCount && data.columns == features)
        if let network {
            let targets = networkTargets(data.labels)
            return data.features.withUnsafeBufferPointer { x in
                targets.withUnsafeBufferPointer { y in
                    network.lossAndGradient(weights: weights, x: x, labels: y, rows: data.rows, gradient: &gradient)
                }
            }
        }
        for i in gradient.indices { gradient[i] = 0 }
        guard data.rows > 0 else { return 0 }
        if outputs == 1 {
            let positive = kind.isClassifier ? classes[min(1, classes.count - 1)] : 0
            let total = weights.withUnsafeBufferPointer { w in
                data.features.withUnsafeBufferPointer { x in
                    data.labels.withUnsafeBufferPointer { y in
                        gradient.withUnsafeMutableBufferPointer { g in
                            BinaryKernel.lossAndGradient(
                                kind: kind, positive: positive, weights: w, x: x, labels: y, rows: data.rows,
                                features: features,
                                gradient: g)
                        }
                    }
                }
            }
            let scale = 1 / Float(data.rows)
            for i in gradient.indices { gradient[i] *= scale }
            return total / Double(data.rows)
        }
        var total = 0.0
        let d = features
        let stride = self.stride
        weights.withUnsafeBufferPointer { w in
            data.features.withUnsafeBufferPointer { x in
                gradient.withUnsafeMutableBufferPointer { g in
                    var scores = [Float](repeating: 0, count: outputs)
                    var derivative = [Float](repeating: 0, count: outputs)
                    for row in 0..<data.rows {
                        let xr = UnsafeBufferPointer(rebasing: x[(row * d)..<((row + 1) * d)])
                        for o in 0..<outputs {
                            scores[o] = dot(w, o * stride, xr, d) + w[o * stride + d]
                        }
                        total += lossDerivative(scores: scores, label: data.labels[row], derivative: &derivative)
                        for o in 0..<outputs where derivative[o] != 0 {
                            let base = o * stride
                            let dv = derivative[o]
                            for j in 0..<d { g[base + j] += dv * xr[j] }
                            g[base + d] += dv
                        }
                    }
                }
            }
        }
        let scale = 1 / Float(data.rows)
        for i in gradient.indices { gradient[i] *= scale }
        return total / Double(data.rows)
    }

    /// Labels as the network's head reads them: class indices (softmax), 0/1 (logistic), values (linear).
    func networkTargets(_ labels: [Float]) -> [Float] {
        switch classes.count {
        case 0: labels
        case 2: labels.map { classIndex($0) == 1 ? 1 : 0 }
        default: labels.map { Float(classIndex($0) ?? 0) }
        }
    }

    /// The network's outputs for `data`: probabilities (softmax, logistic) or values (linear).
    func networkOutputs(_ network: MLP, weights: [Float], data: Dataset) -> [Float] {
        data.features.withUnsafeBufferPointer { network.predict(weights: weights, x: $0, rows: data.rows) }
    }

    /// Loss of one row and d(loss)/d(score) per output.
    @inline(__always)
    func lossDerivative(scores: [Float], label: Float, derivative: inout [Float]) -> Double {
        switch kind {
        case .linearRegression:
            let residual = scores[0] - label
            derivative[0] = residual
            return 0.5 * Double(residual * residual)
        case .logisticRegression:
            let y: Float = classIndex(label) == 1 ? 1 : 0
            let s = scores[0]
            derivative[0] = sigmoid(s) - y
            // log(1 + e^s) − y·s, computed stably
            return Double(softplus(s) - y * s)
        case .linearSVM:
            let y: Float = classIndex(label) == 1 ? 1 : -1
            let margin = y * scores[0]
            derivative[0] = margin < 1 ? -y : 0
            return Double(max(0, 1 - margin))
        case .softmax, .mlp:
            let target = classIndex(label) ?? 0
            let top = scores.max() ?? 0
            var sum: Float = 0
            for o in 0..<scores.count {
                derivative[o] = expf(scores[o] - top)
                sum += derivative[o]
            }
            for o in 0..<scores.count { derivative[o] /= sum }
            let loss = Double(logf(sum) + top - scores[target])
            derivative[target] -= 1
            return loss
        }
    }

    /// Raw scores `rows × outputs` for `data` (features in this objective's order).
    public func scores(weights: [Float], data: Dataset) -> [Float] {
        var out = [Float](repeating: 0, count: data.rows * outputs)
        let d = features
        weights.withUnsafeBufferPointer { w in
            data.features.withUnsafeBufferPointer { x in
                for row in 0..<data.rows {
                    let xr = UnsafeBufferPointer(rebasing: x[(row * d)..<((row + 1) * d)])
                    for o in 0..<outputs { out[row * outputs + o] = dot(w, o * stride, xr, d) + w[o * stride + d] }
                }
            }
        }
        return out
    }

    /// Predicted labels (classifiers) or values (regression).
    public func predict(weights: [Float], data: Dataset) -> [Float] {
        if let network {
            let out = networkOutputs(network, weights: weights, data: data)
            switch network.head {
            case .linear: return out
            case .logistic: return out.map { $0 > 0.5 ? classes[1] : classes[0] }
            case .softmax(let count):
                return (0..<data.rows).map { row in
                    var best = 0
                    for o in 1..<count where out[row * count + o] > out[row * count + best] { best = o }
                    return classes[best]
                }
            }
        }
        let s = scores(weights: weights, data: data)
        switch kind {
        case .linearRegression:
            return s
        case .logisticRegression, .linearSVM:
            return s.map { $0 > 0 ? classes[min(1, classes.count - 1)] : classes[0] }
        case .softmax, .mlp:
            return (0..<data.rows).map { row in
                var best = 0
                for o in 1..<outputs where s[row * outputs + o] > s[row * outputs + best] { best = o }
                return classes[best]
            }
        }
    }

    /// Class probabilities `rows × classes` (logistic and softmax), nil for other models.
    public func probabilities(weights: [Float], data: Dataset) -> [Float]? {
        if let network {
            let out = networkOutputs(network, weights: weights, data: data)
            switch network.head {
            case .linear: return nil
            case .logistic: return out.flatMap { [1 - $0, $0] }
            case .softmax: return out
            }
        }
        let s = scores(weights: weights, data: data)
        switch kind {
        case .logisticRegression:
            return s.flatMap { [1 - sigmoid($0), sigmoid($0)] }
        case .softmax:
            var out = s
            for row in 0..<data.rows {
                let range = (row * outputs)..<((row + 1) * outputs)
                let top = out[range].max() ?? 0
                var sum: Float = 0
                for i in range {
                    out[i] = expf(out[i] - top)
                    sum += out[i]
                }
                for i in range { out[i] /= sum }
            }
            return out
        case .linearRegression, .linearSVM, .mlp:
            return nil
        }
    }
}

@inline(__always)
func dot(_ w: UnsafeBufferPointer<Float>, _ offset: Int, _ x: UnsafeBufferPointer<Float>, _ count: Int) -> Float {
    // Four accumulators let the compiler vectorise without reassociation flags.
    var a: Float = 0
    var b: Float = 0
    var c: Float = 0
    var e: Float = 0
    var j = 0
    while j + 4 <= count {
        a += w[offset + j] * x[j]
        b += w[offset + j + 1] * x[j + 1]
        c += w[offset + j + 2] * x[j + 2]
        e += w[offset + j + 3] * x[j + 3]
        j += 4
    }
    while j < count {
        a += w[offset + j] * x[j]
        j += 1
    }
    return (a + b) + (c + e)
}

@inline(__always)
func sigmoid(_ s: Float) -> Float {
    s >= 0 ? 1 / (1 + expf(-s)) : expf(s) / (1 + expf(s))
}

@inline(__always)
func softplus(_ s: Float) -> Float {
    s > 0 ? s + log1pf(expf(-s)) : log1pf(expf(s))
}

#if canImport(Glibc)
    import Glibc
#endif
