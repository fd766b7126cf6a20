/// Grows CART trees on binned data: histogram split search, best-first expansion when the number of
/// leaves is bounded (scikit-learn's order), depth-first otherwise. Pure and deterministic under the
/// random generator it is given.
public struct TreeBuilder: Sendable {
    public let bins: FeatureBins
    public let settings: TreeSettings
    /// Classification: the sorted class labels; regression: empty.
    public let classes: [Float]
    let classIndex: [Int32]
    let targets: [Float]
    /// Statistics per node and per bin: class weights, or (Σw, Σwy, Σwy²).
    let width: Int

    public init(data: Dataset, bins: FeatureBins, classes: [Float], settings: TreeSettings) throws(InvalidSetting) {
        try settings.validate()
        self.bins = bins
        self.settings = settings
        if settings.task == .classification {
            guard classes.count >= 1 else { throw InvalidSetting("a classification tree needs at least one class") }
            var index: [Float: Int32] = [:]
            for (i, label) in classes.enumerated() { index[label] = Int32(i) }
            var mapped = [Int32](repeating: 0, count: data.rows)
            for (r, label) in data.labels.enumerated() {
                guard let i = index[label] else {
                    throw InvalidSetting("label \(label) in row \(r + 1) is not among the classes \(classes)")
                }
                mapped[r] = i
            }
            self.classes = classes
            classIndex = mapped
            targets = []
            width = classes.count
        } else {
            self.classes = []
            classIndex = []
            targets = data.labels
            width = 3
        }
    }

    public var outputs: Int { settings.task == .classification ? classes.count : 1 }

    /// Fits one tree on the rows with weight > 0 (bootstrap counts, or all ones).
    public func fit(weights: [Float], random: inout SplitMix64) -> DecisionTree {
        precondition(weights.count == bins.rows)
        var growth = Growth(builder: self, weights: weights)
        return growth.run(random: &random)
    }

    /// Fits one tree on every row with weight 1.
    public func fit(random: inout SplitMix64) -> DecisionTree {
        fit(weights: [Float](repeating: 1, count: bins.rows), random: &random)
    }
}

/// One tree's growth: the row index ranges of its nodes and the frontier of candidate splits.
private struct Growth {
    struct Split {
        let node: Int
        let start: Int
        let end: Int
        let depth: Int
        let stats: [Double]
        let feature: Int
        let bin: Int
        let threshold: Float
        let improvement: Double
        let leftStats: [Double]
    }

    let builder: TreeBuilder
    let weights: [Float]
    var indices: [Int32]
    var feature: [Int32] = []
    var threshold: [Float] = []
    var left: [UInt32] = []
    var right: [UInt32] = []
    var values: [Float] = []
    var histogram: [Double]
    var order: [Int]

    init(builder: TreeBuilder, weights: [Float]) {
        self.builder = builder
        self.weights = weights
        indices = weights.indices.filter { weights[$0] > 0 }.map(Int32.init)
        histogram = [Double](repeating: 0, count: 256 * builder.width)
        order = Array(0..<builder.bins.thresholds.count)
    }

    var width: Int { builder.width }
    var isClassification: Bool { builder.settings.task == .classification }

    mutating func run(random: inout SplitMix64) -> DecisionTree {
        let rootStats = statistics(0, indices.count)
        let root = addNode(rootStats)
        var frontier = SplitHeap()
        if let split = findSplit(node: root, start: 0, end: indices.count, depth: 0, stats: rootStats, random: &random)
        {
            frontier.push(split)
        }
        var leaves = 1
        let maxLeaves = builder.settings.maxLeafNodes
        while maxLeaves == 0 || leaves < maxLeaves, let split = frontier.pop() {
            let middle = partition(split)
            let rightStats = zip(split.stats, split.leftStats).map { $0 - $1 }
            let leftNode = addNode(split.leftStats)
            let rightNode = addNode(rightStats)
            feature[split.node] = Int32(split.feature)
            threshold[split.node] = split.threshold
            left[split.node] = UInt32(leftNode)
            right[split.node] = UInt32(rightNode)
            leaves += 1
            let children = [
                (leftNode, split.start, middle, split.leftStats), (rightNode, middle, split.end, rightStats),
            ]
            for (node, start, end, stats) in children {
                if let next = findSplit(
                    node: node, start: start, end: end, depth: split.depth + 1, stats: stats, random: &random)
                {
                    frontier.push(next)
                }
            }
        }
        return DecisionTree(
            task: builder.settings.task, featureCount: builder.bins.thresholds.count, outputs: builder.outputs,
            feature: feature, threshold: threshold, left: left, right: right, values: values)
    }

    private mutating func addNode(_ stats: [Double]) -> Int {
        feature.append(-1)
        threshold.append(0)
        left.append(0)
        right.append(0)
        let total = weight(stats)
        if isClassification {
            values += stats.map { Float(total > 0 ? $0 / total : 0) }
        } else {
            values.append(Float(total > 0 ? stats[1] / total : 0))
        }
        return feature.count - 1
    }

    private func weight(_ stats: [Double]) -> Double { isClassification ? stats.reduce(0, +) : stats[0] }

    private func statistics(_ start: Int, _ end: Int) -> [Double] {
        var stats = [Double](repeating: 0, count: width)
        for position in start..<end {
            let r = Int(indices[position])
            let w = Double(weights[r])
            if isClassification {
                stats[Int(builder.classIndex[r])] += w
            } else {
                let y = Double(builder.targets[r])
                stats[0] += w
                stats[1] += w * y
                stats[2] += w * y * y
            }
        }
        return stats
    }

    private func isPure(_ stats: [Double]) -> Bool {
        if isClassification { return stats.filter { $0 > 0 }.count <= 1 }
        let mean = stats[1] / stats[0]
        let variance = stats[2] / stats[0] - mean * mean
        return variance <= 1e-12 * max(1, mean * mean)
    }

    /// The criterion's proxy to maximise for a (left, right) partition; `score − base` is the weighted
    /// impurity decrease.
    private func score(_ stats: UnsafeBufferPointer<Double>) -> Double {
        switch builder.settings.criterion {
        case .gini:
            var total = 0.0
            var squares = 0.0
            for c in stats { total += c; squares += c * c }
            return total > 0 ? squares / total : 0
        case .entropy:
            var total = 0.0
            var sum = 0.0
            for c in stats where c > 0 { total += c; sum += c * LibM.log(c) }
            return total > 0 ? sum - total * LibM.log(total) : 0
        case .squaredError:
            return stats[0] > 0 ? stats[1] * stats[1] / stats[0] : 0
        }
    }

    private mutating func findSplit(
        node: Int, start: Int, end: Int, depth: Int, stats: [Double], random: inout SplitMix64
    ) -> Split? {
        let settings = builder.settings
        let total = weight(stats)
        if settings.maxDepth > 0 && depth >= settings.maxDepth { return nil }
        if total < Double(settings.minSamplesSplit) || total < Double(2 * settings.minSamplesLeaf) { return nil }
        if isPure(stats) { return nil }
        let base = stats.withUnsafeBufferPointer { score($0) }
        let featureCount = order.count
        let wanted = settings.maxFeatures.count(of: featureCount)
        let minLeaf = Double(settings.minSamplesLeaf)
        let width = width
        var best: (feature: Int, bin: Int, next: Int, proxy: Double, left: [Double])?
        var visited = 0
        var drawn = 0
        var leftStats = [Double](repeating: 0, count: width)
        var rightStats = leftStats
        // Visit features in a random order until `wanted` non-constant ones were evaluated.
        while visited < wanted && drawn < featureCount {
            if wanted < featureCount {
                let pick = drawn + Int(random.next() % UInt64(featureCount - drawn))
                order.swapAt(drawn, pick)
            }
            let f = order[drawn]
            drawn += 1
            let binCount = builder.bins.thresholds[f].count + 1
            guard binCount > 1 else { continue }
            buildHistogram(feature: f, bins: binCount, start: start, end: end)
            var occupied = 0
            for b in 0..<binCount where binWeight(b) > 0 { occupied += 1 }
            guard occupied > 1 else { continue }
            visited += 1
            for k in 0..<width { leftStats[k] = 0 }
            var b = 0
            while b < binCount - 1 {
                for k in 0..<width { leftStats[k] += histogram[b * width + k] }
                // The split point sits before the next occupied bin.
                var next = b + 1
                while next < binCount && binWeight(next) == 0 { next += 1 }
                if next >= binCount { break }
                let leftWeight = weight(leftStats)
                let rightWeight = total - leftWeight
                if rightWeight < minLeaf { break }
                if leftWeight >= minLeaf && leftWeight > 0 {
                    for k in 0..<width { rightStats[k] = stats[k] - leftStats[k] }
                    let proxy =
                        leftStats.withUnsafeBufferPointer { score($0) }
                        + rightStats.withUnsafeBufferPointer { score($0) }
                    if best == nil || proxy > best!.proxy {
                        best = (f, b, next, proxy, leftStats)
                    }
                }
                b = next  // bins in between are empty in this node
            }
        }
        guard let chosen = best else { return nil }
        let bins = builder.bins
        return Split(
            node: node, start: start, end: end, depth: depth, stats: stats, feature: chosen.feature, bin: chosen.bin,
            // CART's threshold: midway between the largest value going left and the smallest going right.
            threshold: FeatureBins.midpoint(
                bins.high[chosen.feature][chosen.bin], bins.low[chosen.feature][chosen.next]),
            improvement: max(0, chosen.proxy - base), leftStats: chosen.left)
    }

    @inline(__always)
    private func binWeight(_ b: Int) -> Double {
        if isClassification {
            var sum = 0.0
            for k in 0..<width { sum += histogram[b * width + k] }
            return sum
        }
        return histogram[b * width]
    }

    private mutating func buildHistogram(feature f: Int, bins binCount: Int, start: Int, end: Int) {
        let width = width
        let rows = builder.bins.rows
        let classification = isClassification
        histogram.withUnsafeMutableBufferPointer { hist in
            for i in 0..<(binCount * width) { hist[i] = 0 }
            builder.bins.codes.withUnsafeBufferPointer { codes in
                indices.withUnsafeBufferPointer { indices in
                    weights.withUnsafeBufferPointer { weights in
                        let column = UnsafeBufferPointer(rebasing: codes[(f * rows)..<((f + 1) * rows)])
                        if classification {
                            builder.classIndex.withUnsafeBufferPointer { classes in
                                for position in start..<end {
                                    let r = Int(indices[position])
                                    hist[Int(column[r]) * width + Int(classes[r])] += Double(weights[r])
                                }
                            }
                        } else {
                            builder.targets.withUnsafeBufferPointer { targets in
                                for position in start..<end {
                                    let r = Int(indices[position])
                                    let w = Double(weights[r])
                                    let y = Double(targets[r])
                                    let base = Int(column[r]) * 3
                                    hist[base] += w
                                    hist[base + 1] += w * y
                                    hist[base + 2] += w * y * y
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Moves the split's rows going left to the front of its range; returns where the right ones start.
    private mutating func partition(_ split: Split) -> Int {
        let rows = builder.bins.rows
        let bin = UInt8(split.bin)
        var low = split.start
        var high = split.end - 1
        builder.bins.codes.withUnsafeBufferPointer { codes in
            let base = split.feature * rows
            while low <= high {
                if codes[base + Int(indices[low])] <= bin {
                    low += 1
                } else {
                    indices.swapAt(low, high)
                    high -= 1
                }
            }
        }
        return low
    }
}

/// A max-heap of candidate splits by impurity decrease; ties go to the older node (deterministic).
private struct SplitHeap {
    private var items: [Growth.Split] = []

    private func before(_ a: Growth.Split, _ b: Growth.Split) -> Bool {
        a.improvement > b.improvement || (a.improvement == b.improvement && a.node < b.node)
    }

    mutating func push(_ split: Growth.Split) {
        items.append(split)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard before(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Growth.Split? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let l = 2 * parent + 1
            let r = l + 1
            var first = parent
            if l < items.count && before(items[l], items[first]) { first = l }
            if r < items.count && before(items[r], items[first]) { first = r }
            if first == parent { break }
            items.swapAt(parent, first)
            parent = first
        }
        return top
    }
}
