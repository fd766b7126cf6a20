/// What the master counts: rejected messages by kind, bytes, updates.
struct MasterCounters {
    var rejected: [String: Int] = [:]
    var bytesReceived = 0
    var bytesSent = 0

    mutating func reject(_ kind: String) { rejected[kind, default: 0] += 1 }
    var rejectedTotal: Int { rejected.values.reduce(0, +) }
}
