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
    /// The bin budget they were computed with.
    public let maxBins: Int

    public init(_ data: Dataset, maxBins: Int = 256) {
        let rows = data.rows
        let columns = data.columns
        var thresholds: [[Float]] = []
        var low: [[Float]] = []
        var high: [[Float]] = []
        var codes = [UInt8](repeating: 0, count: rows * columns)
        // (sortable key << 32 | row) per row, radix-sorted by key: one sort per feature gives the
        // distinct values, the cut points and every row's bin in a single pass over the sorted order.
        var keyed = [UInt64](repeating: 0, count: rows)
        var scratch = keyed
        var values = [Float](repeating: 0, count: rows)
        data.features.withUnsafeBufferPointer { x in
            for f in 0..<columns {
                for r in 0..<rows { keyed[r] = UInt64(FeatureBins.sortKey(x[r * columns + f])) << 32 | UInt64(r) }
                FeatureBins.radixSortByUpperHalf(&keyed, scratch: &scratch)
                for (i, item) in keyed.enumerated() { values[i] = x[Int(item & 0xFFFF_FFFF) * columns + f] }
                var distinct: [Float] = []
                distinct.reserveCapacity(min(rows, 4_096))
                for value in values where distinct.last != value { distinct.append(value) }
                let cuts = FeatureBins.cutPoints(distinct: distinct, maxBins: maxBins)
                var lowest = [Float](repeating: .infinity, count: cuts.count + 1)
                var highest = [Float](repeating: -.infinity, count: cuts.count + 1)
                codes.withUnsafeMutableBufferPointer { out in
                    var b = 0
                    for (i, item) in keyed.enumerated() {
                        let value = values[i]
                        while b < cuts.count && value > cuts[b] { b += 1 }
                        out[f * rows + Int(item & 0xFFFF_FFFF)] = UInt8(b)
                        lowest[b] = min(lowest[b], value)
                        highest[b] = max(highest[b], value)
                    }
                }
                thresholds.append(cuts)
                low.append(lowest)
                high.append(highest)
            }
        }
        self.thresholds = thresholds
        self.codes = codes
        self.low = low
        self.high = high
        self.rows = rows
        self.maxBins = maxBins
    }

    /// An unsigned key with the same order as the float (negative values flipped, positive ones offset).
    @inline(__always)
    static func sortKey(_ value: Float) -> UInt32 {
        let bits = value.bitPattern
        return bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
    }

    /// Least-significant-digit radix sort on bits 32…63, stable, four passes of 8 bits.
    static func radixSortByUpperHalf(_ items: inout [UInt64], scratch: inout [UInt64]) {
        var counts = [Int](repeating: 0, count: 256)
        for pass in 0..<4 {
            let shift = UInt64(32 + 8 * pass)
            for i in 0..<256 { counts[i] = 0 }
            for item in items { counts[Int((item >> shift) & 0xFF)] += 1 }
            var total = 0
            for i in 0..<256 {
                let count = counts[i]
                counts[i] = total
                total += count
            }
            items.withUnsafeBufferPointer { source in
                scratch.withUnsafeMutableBufferPointer { target in
                    for item in source {
                        let digit = Int((item >> shift) & 0xFF)
                        target[counts[digit]] = item
                        counts[digit] += 1
                    }
                }
            }
            swap(&items, &scratch)
        }
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

    static func cutPoints(distinct: [Float], maxBins: Int) -> [Float] {
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
