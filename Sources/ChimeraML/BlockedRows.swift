import Dispatch

/// A shard's rows regrouped for the SIMD kernel: blocks of eight rows, each block stored feature by
/// feature (the eight values of feature 0, then of feature 1, …), the last block padded with zeros.
///
/// In this layout a block's eight scores are `features` vector multiply-adds and its gradient
/// contribution another `features`, with no horizontal sums per row; the row-major kernel spends most
/// of its time on those sums when a row (21 features here) is not a multiple of the vector width.
public struct BlockedRows: Sendable {
    public static let lanes = 8
    public let rows: Int
    public let features: Int
    /// `blocks × features × lanes`.
    let values: [Float]
    /// `blocks × lanes`; padding lanes repeat nothing meaningful and are masked out by the kernel.
    let labels: [Float]

    public var blocks: Int { (rows + Self.lanes - 1) / Self.lanes }

    /// Packs `data`, standardising on the way when `standardizer` is given (one pass, one copy).
    public init(_ data: Dataset, standardizer: Standardizer? = nil) {
        let lanes = Self.lanes
        let d = data.columns
        rows = data.rows
        features = d
        let blocks = (data.rows + lanes - 1) / lanes
        var values = [Float](repeating: 0, count: blocks * d * lanes)
        var labels = [Float](repeating: 0, count: blocks * lanes)
        let mean = standardizer?.mean ?? [Float](repeating: 0, count: d)
        let inverseScale = standardizer?.scale.map { 1 / $0 } ?? [Float](repeating: 1, count: d)
        data.features.withUnsafeBufferPointer { x in
            values.withUnsafeMutableBufferPointer { out in
                for row in 0..<data.rows {
                    let base = (row / lanes) * d * lanes + row % lanes
                    for j in 0..<d {
                        out[base + j * lanes] = (x[row * d + j] - mean[j]) * inverseScale[j]
                    }
                }
            }
        }
        for row in 0..<data.rows { labels[row] = data.labels[row] }
        self.values = values
        self.labels = labels
    }
}

extension Objective {
    /// Mean loss and mean gradient over `rows` (single-output models: linear, logistic, hinge), the
    /// blocks split over `threads` threads. Same contract as `lossAndGradient(weights:data:gradient:)`.
    public func lossAndGradient(weights: [Float], rows: BlockedRows, threads: Int = 1, gradient: inout [Float])
        -> Double
    {
        precondition(outputs == 1, "the blocked kernel serves single-output models")
        precondition(weights.count == weightCount && gradient.count == weightCount && rows.features == features)
        for i in gradient.indices { gradient[i] = 0 }
        guard rows.rows > 0 else { return 0 }
        let positive = kind.isClassifier ? classes[min(1, classes.count - 1)] : 0
        let parts = max(1, min(threads, rows.blocks / 64))
        var total = 0.0
        if parts == 1 {
            total = BlockedKernel.lossAndGradient(
                kind: kind, positive: positive, weights: weights, rows: rows, blocks: 0..<rows.blocks,
                gradient: &gradient)
        } else {
            // Fixed contiguous ranges: the same thread count always sums in the same order.
            let partials = ParallelParts(count: parts, gradientCount: weightCount)
            let kind = self.kind
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let range = (rows.blocks * part / parts)..<(rows.blocks * (part + 1) / parts)
                var local = [Float](repeating: 0, count: weights.count)
                let loss = BlockedKernel.lossAndGradient(
                    kind: kind, positive: positive, weights: weights, rows: rows, blocks: range, gradient: &local)
                partials.store(part, loss: loss, gradient: local)
            }
            total = partials.reduce(into: &gradient)
        }
        let scale = 1 / Float(rows.rows)
        for i in gradient.indices { gradient[i] *= scale }
        return total / Double(rows.rows)
    }
}

/// Per-thread results of a split pass: plain buffers, each part writing only its own slot (a Swift
/// array in a class would be checked for exclusive access across the threads).
private final class ParallelParts: @unchecked Sendable {
    private let count: Int
    private let gradientCount: Int
    private let losses: UnsafeMutablePointer<Double>
    private let gradients: UnsafeMutablePointer<Float>

    init(count: Int, gradientCount: Int) {
        self.count = count
        self.gradientCount = gradientCount
        losses = .allocate(capacity: count)
        losses.initialize(repeating: 0, count: count)
        gradients = .allocate(capacity: count * gradientCount)
        gradients.initialize(repeating: 0, count: count * gradientCount)
    }

    deinit {
        losses.deallocate()
        gradients.deallocate()
    }

    func store(_ part: Int, loss: Double, gradient: [Float]) {
        losses[part] = loss
        for i in 0..<gradientCount { gradients[part * gradientCount + i] = gradient[i] }
    }

    func reduce(into gradient: inout [Float]) -> Double {
        var total = 0.0
        for part in 0..<count {
            total += losses[part]
            for i in 0..<gradientCount { gradient[i] += gradients[part * gradientCount + i] }
        }
        return total
    }
}
