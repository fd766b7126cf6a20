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
        median = sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : 0.5 * (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2])
        // nearest-rank percentile, as the C floor computes it
        let rank = Swift.max(1, Swift.min(sorted.count, Int((0.99 * Double(sorted.count)).rounded(.up))))
        p99 = sorted[rank - 1]
        min = sorted[0]
        mean = sorted.reduce(0, +) / Double(sorted.count)
    }
}
