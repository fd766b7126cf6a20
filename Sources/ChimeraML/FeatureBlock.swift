/// A linear model whose features are split over workers (model parallelism for linear models): each
/// worker holds every row but only a block of the columns, and the weights of those columns. One
/// iteration of distributed full-batch gradient descent: every block's partial margins X_j W_jᵀ are
/// summed (with the bias) into the margins, from which every block, holding the labels too, computes
/// the loss and its own block of the gradient, Rᵀ X_j / n. The blocks' gradients together are the
/// full-batch gradient of the whole model.
public struct FeatureBlock: Sendable {
    /// The job's model over every feature.
    public let objective: Objective
    /// This block's columns, in the job's feature order.
    public let columns: Range<Int>

    public init(objective: Objective, columns: Range<Int>) {
        precondition(objective.network == nil, "feature blocks are for linear models")
        self.objective = objective
        self.columns = columns
    }

    public var outputs: Int { objective.outputs }
    /// The block's weight tensor: outputs × its columns.
    public var weightShape: [Int] { [outputs, columns.count] }
    /// Its gradient tensor: outputs × (its columns + the bias).
    public var gradientShape: [Int] { [outputs, columns.count + 1] }

    /// The block's weights out of the whole model's (outputs × (features + 1), bias last).
    public func blockWeights(of weights: [Float]) -> [Float] {
        let stride = objective.stride
        return (0..<outputs).flatMap { o in
            weights[(o * stride + columns.lowerBound)..<(o * stride + columns.upperBound)]
        }
    }

    /// X_j W_jᵀ: rows × outputs, for `data` holding this block's columns.
    public func partialMargins(blockWeights w: [Float], data: Dataset) -> [Float] {
        precondition(data.columns == columns.count && w.count == outputs * columns.count, "feature block size")
        let width = columns.count
        var out = [Float](repeating: 0, count: data.rows * outputs)
        w.withUnsafeBufferPointer { wb in
            data.features.withUnsafeBufferPointer { x in
                for row in 0..<data.rows {
                    let xr = UnsafeBufferPointer(rebasing: x[(row * width)..<((row + 1) * width)])
                    for o in 0..<outputs { out[row * outputs + o] = dot(wb, o * width, xr, width) }
                }
            }
        }
        return out
    }

    /// Adds the bias to summed partial margins (rows × outputs).
    public func addBias(_ margins: inout [Float], weights: [Float]) {
        let stride = objective.stride
        let features = objective.features
        for index in margins.indices { margins[index] += weights[(index % outputs) * stride + features] }
    }

    /// From the whole model's margins (rows × outputs, bias included): the mean loss, and this block's
    /// mean gradient (outputs × (columns + 1), the bias's gradient last) into `gradient`.
    public func lossAndGradient(margins: [Float], data: Dataset, gradient: inout [Float]) -> Double {
        let width = columns.count
        precondition(margins.count == data.rows * outputs && gradient.count == outputs * (width + 1))
        for index in gradient.indices { gradient[index] = 0 }
        guard data.rows > 0 else { return 0 }
        var total = 0.0
        var scores = [Float](repeating: 0, count: outputs)
        var derivative = [Float](repeating: 0, count: outputs)
        data.features.withUnsafeBufferPointer { x in
            gradient.withUnsafeMutableBufferPointer { g in
                for row in 0..<data.rows {
                    for o in 0..<outputs { scores[o] = margins[row * outputs + o] }
                    total += objective.lossDerivative(scores: scores, label: data.labels[row], derivative: &derivative)
                    for o in 0..<outputs where derivative[o] != 0 {
                        let base = o * (width + 1)
                        let dv = derivative[o]
                        for j in 0..<width { g[base + j] += dv * x[row * width + j] }
                        g[base + width] += dv
                    }
                }
            }
        }
        let scale = 1 / Float(data.rows)
        for index in gradient.indices { gradient[index] *= scale }
        return total / Double(data.rows)
    }

    /// Contiguous blocks of `features` columns over `parts` workers, as even as can be.
    public static func blocks(features: Int, parts: Int) -> [Range<Int>] {
        microBatchRanges(rows: features, parts: parts)
    }
}
