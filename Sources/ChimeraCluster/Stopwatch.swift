#if canImport(Glibc)
    import Glibc
#endif

/// Monotonic seconds, comparable across processes on one machine (CLOCK_MONOTONIC).
public func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}

/// Order statistics of timings.
public struct Summary: Sendable {
    public let count: Int
    public let median: Double
    public let p99: Double
    public let min: Double
    public let mean: Double

    public init(_ samples: [Double]) {
        let sorted = samples.sorted()
        count = sorted.count
        guard !sorted.isEmpty else {
            median = 0
            p99 = 0
            min = 0
            mean = 0
            return
        }
        median =
            sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : 0.5 * (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2])
        p99 = Summary.percentile(sorted: sorted, 0.99)
        min = sorted[0]
        mean = sorted.reduce(0, +) / Double(sorted.count)
    }

    /// The nearest-rank percentile (p in 0…1) of sorted samples, as the C floor computes it; NaN for none.
    /// The one percentile every benchmark and report uses.
    public static func percentile(sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = Swift.max(1, Swift.min(sorted.count, Int((p * Double(sorted.count)).rounded(.up))))
        return sorted[rank - 1]
    }
}
