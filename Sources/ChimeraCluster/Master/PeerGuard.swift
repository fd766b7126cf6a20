import ZeroMQ

/// Bounds what one peer can make the master do: messages per peer per second (a flood is dropped
/// unanswered, and counted), and log lines about rejected messages (the first of each kind in a
/// second is written; the others are counted and summed up in the next line of that kind).
/// Pure bookkeeping: the master's loop asks and acts.
struct PeerGuard {
    /// Messages one peer may send per second; more are dropped. High enough that no worker in a
    /// training round (one message per iteration) comes near it.
    let maxMessagesPerSecond: Int
    private var window = 0.0
    private var counts: [UInt64: Int] = [:]
    private var logWindow: [String: (since: Double, suppressed: Int)] = [:]

    init(maxMessagesPerSecond: Int) { self.maxMessagesPerSecond = maxMessagesPerSecond }

    /// Whether the peer (its routing id) may have this message handled now.
    mutating func admit(_ peer: Frame, now: Double) -> Bool {
        if now - window >= 1 {
            window = now
            counts.removeAll(keepingCapacity: counts.count < 4_096)
        }
        let key = Self.key(peer)
        let count = (counts[key] ?? 0) + 1
        counts[key] = count
        return count <= maxMessagesPerSecond
    }

    /// The line to log for a rejection of `kind` now, or nil when one was logged less than a second
    /// ago (then `text` is not even built: under a flood this runs for every message).
    mutating func logLine(_ kind: String, _ text: @autoclosure () -> String, now: Double) -> String? {
        if let last = logWindow[kind], now - last.since < 1 {
            logWindow[kind]!.suppressed += 1
            return nil
        }
        let text = text()
        let suppressed = logWindow[kind]?.suppressed ?? 0
        logWindow[kind] = (now, 0)
        return suppressed > 0
            ? "\(text) (and \(suppressed) more like it in the last second, counted in rejected_messages)" : text
    }

    /// A peer's routing id as a number: libzmq's own ids are 5 bytes; longer ones are hashed.
    static func key(_ peer: Frame) -> UInt64 {
        peer.withUnsafeBytes { bytes in
            if bytes.count <= 8 {
                var value: UInt64 = 0
                for byte in bytes { value = value << 8 | UInt64(byte) }
                return value | UInt64(bytes.count) << 60
            }
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in bytes {
                hash ^= UInt64(byte)
                hash &*= 0x100_0000_01b3
            }
            return hash
        }
    }
}
