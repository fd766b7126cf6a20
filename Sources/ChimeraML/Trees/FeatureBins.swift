/// Per-feature split candidates and the data recoded as bin numbers (one byte per cell).
///
/// A feature with at most `maxBins` distinct values gets one bin per value, so its candidate thresholds
/// are exactly CART's (midpoints between consecutive distinct values). Otherwise the cut points are
/// taken at quantiles of the distinct values.
public struct FeatureBins: Sendable {
    /// thresholds[f][b]: values ≤ it fall in bins 0…b. Sorted, one fewer than the feature's bins.
    public let thresholds: [[Float]]
    /// Column-major codes: codes[f * rows + r] is row r's bin for feature f.
    public let codes: [UInt8]
    /// low[f][b] / high[f][b]: the smallest and largest value seen in bin b (for CART's midpoints).
    public let low: [[Float]]
    public let high: [[Float]]
    public let rows: Int

    public init(_ data: Dataset, maxBins: Int = 256) {
        let rows = data.rows
        let columns = data.columns
        var thresholds: [[Float]] = []
        var low: [[Float]] = []
        var high: [[Float]] = []
        var codes = [UInt8](repeating: 0, count: rows * columns)
        var column = [Float](repeating: 0, count: rows)
        data.features.withUnsafeBufferPointer { x in
            for f in 0..<columns {
                for r in 0..<rows { column[r] = x[r * columns + f] }
                let cuts = FeatureBins.cutPoints(column, maxBins: maxBins)
                thresholds.append(cuts)
                var lowest = [Float](repeating: .infinity, count: cuts.count + 1)
                var highest = [Float](repeating: -.infinity, count: cuts.count + 1)
                codes.withUnsafeMutableBufferPointer { out in
                    for r in 0..<rows {
                        let value = column[r]
                        let b = FeatureBins.bin(of: value, in: cuts)
                        out[f * rows + r] = UInt8(b)
                        lowest[b] = min(lowest[b], value)
                        highest[b] = max(highest[b], value)
                    }
                }
                low.append(lowest)
                high.append(highest)
            }
        }
        self.thresholds = thresholds
        self.codes = codes
        self.low = low
        self.high = high
        self.rows = rows
    }

    /// The number of thresholds below `value`: its bin.
    @inline(__always)
    static func bin(of value: Float, in cuts: [Float]) -> Int {
        var low = 0
        var high = cuts.count
        while low < high {
            let mid = (low + high) >> 1
            if cuts[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low
    }

    static func cutPoints(_ column: [Float], maxBins: Int) -> [Float] {
        var distinct = column.sorted()
        var unique = 0
        for value in distinct where unique == 0 || distinct[unique - 1] != value {
            distinct[unique] = value
            unique += 1
        }
        distinct.removeLast(distinct.count - unique)
        guard distinct.count > 1 else { return [] }
        var boundaries: [Int]  // a cut between distinct[i] and distinct[i + 1]
        if distinct.count <= maxBins {
            boundaries = Array(0..<(distinct.count - 1))
        } else {
            boundaries = []
            var previous = -1
            for k in 1..<maxBins {
                let i = min(distinct.count - 2, k * distinct.count / maxBins)
                if i > previous { boundaries.append(i) }
                previous = i
            }
        }
        return boundaries.map { midpoint(distinct[$0], distinct[$0 + 1]) }
    }

    /// CART's threshold between two consecutive values, never equal to the upper one after rounding.
    public static func midpoint(_ low: Float, _ high: Float) -> Float {
        let mid = Float((Double(low) + Double(high)) / 2)
        return mid >= high || mid.isInfinite ? low : mid
    }
}
