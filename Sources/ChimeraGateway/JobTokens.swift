import Synchronization

/// The tokens of the asynchronous jobs this gateway started (the master gives a job's token only to
/// the client that started it, and a cancel must carry it). The newest 4,096 are kept.
final class JobTokens: Sendable {
    private let tokens = Mutex<[UInt64: UInt64]>([:])
    private static let capacity = 4_096

    func remember(_ id: UInt64, _ token: UInt64) {
        tokens.withLock { tokens in
            tokens[id] = token
            if tokens.count > Self.capacity, let oldest = tokens.keys.min() { tokens[oldest] = nil }
        }
    }

    func token(of id: UInt64) -> UInt64? { tokens.withLock { $0[id] } }
}
