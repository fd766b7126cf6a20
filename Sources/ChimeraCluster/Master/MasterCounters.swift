/// What the master counts: rejected messages by kind, bytes, updates.
struct MasterCounters {
    var rejected: [String: Int] = [:]
    var bytesReceived = 0
    var bytesSent = 0
    /// Of finished jobs; the running job's are added when status is asked for.
    var iterations = 0
    var staleness: [Int] = []
    var barrierWaitSeconds = 0.0
    var jobsByState: [String: Int] = [:]

    mutating func finished(
        _ state: String, iterations: Int = 0, staleness histogram: [Int] = [], barrierWait: Double = 0
    ) {
        jobsByState[state, default: 0] += 1
        self.iterations += iterations
        staleness = MasterCounters.sum(staleness, histogram)
        barrierWaitSeconds += barrierWait
    }

    static func sum(_ a: [Int], _ b: [Int]) -> [Int] {
        (0..<max(a.count, b.count)).map { (($0 < a.count) ? a[$0] : 0) + (($0 < b.count) ? b[$0] : 0) }
    }

    mutating func reject(_ kind: String) { rejected[kind, default: 0] += 1 }
    var rejectedTotal: Int { rejected.values.reduce(0, +) }
}
