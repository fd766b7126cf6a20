/// A fitted CART tree in flat arrays. Node 0 is the root; children always have larger indices than
/// their parent. A row goes left when `x[feature] <= threshold`.
public struct DecisionTree: Sendable, Equatable {
    public var task: TreeTask
    public var featureCount: Int
    /// Values per node: the class count (classification) or 1 (regression).
    public var outputs: Int
    /// −1 for a leaf.
    public var feature: [Int32]
    public var threshold: [Float]
    public var left: [UInt32]
    public var right: [UInt32]
    /// nodes × outputs: class probabilities or the mean value of the node's training rows.
    public var values: [Float]

    public init(
        task: TreeTask, featureCount: Int, outputs: Int, feature: [Int32], threshold: [Float], left: [UInt32],
        right: [UInt32], values: [Float]
    ) {
        self.task = task
        self.featureCount = featureCount
        self.outputs = outputs
        self.feature = feature
        self.threshold = threshold
        self.left = left
        self.right = right
        self.values = values
    }

    public var nodeCount: Int { feature.count }
    public var leafCount: Int { feature.reduce(0) { $0 + ($1 < 0 ? 1 : 0) } }

    /// The deepest leaf's depth (a single leaf has depth 0).
    public var depth: Int {
        var depths = [Int](repeating: 0, count: nodeCount)
        var deepest = 0
        for node in 0..<nodeCount where feature[node] >= 0 {
            let d = depths[node] + 1
            depths[Int(left[node])] = d
            depths[Int(right[node])] = d
            deepest = max(deepest, d)
        }
        return deepest
    }

    /// The leaf a row (`featureCount` values) falls in.
    @inline(__always)
    public func leaf(_ row: UnsafeBufferPointer<Float>) -> Int {
        var node = 0
        while true {
            let f = feature[node]
            if f < 0 { return node }
            node = Int(row[Int(f)] <= threshold[node] ? left[node] : right[node])
        }
    }

    /// Adds `scale ×` this tree's prediction for every row of `data` to `into` (rows × outputs).
    public func accumulate(_ data: Dataset, scale: Float, into: inout [Float]) {
        precondition(data.columns == featureCount && into.count == data.rows * outputs)
        let columns = data.columns
        let outputs = outputs
        data.features.withUnsafeBufferPointer { x in
            values.withUnsafeBufferPointer { values in
                into.withUnsafeMutableBufferPointer { out in
                    for r in 0..<data.rows {
                        let row = UnsafeBufferPointer(rebasing: x[(r * columns)..<((r + 1) * columns)])
                        let base = leaf(row) * outputs
                        for k in 0..<outputs { out[r * outputs + k] += scale * values[base + k] }
                    }
                }
            }
        }
    }

    /// Predictions for every row: rows × outputs.
    public func predict(_ data: Dataset) -> [Float] {
        var out = [Float](repeating: 0, count: data.rows * outputs)
        accumulate(data, scale: 1, into: &out)
        return out
    }
}
