/// Stale Synchronous Parallel, as a pure state machine (no clocks of the wall, no I/O).
///
/// A worker's clock is the number of iterations it has pushed. It may **start** iteration `c` only when
/// every live worker has pushed at least `c − s` iterations (`minClock ≥ c − s`); otherwise its request is
/// parked until that holds. `s = 0` is BSP (lockstep), `s = nil` never waits. Dead workers leave the
/// minimum; joiners enter at the current minimum so they hold nobody back.
public struct SSPBarrier: Sendable, Equatable {
    public let staleness: Int?
    public private(set) var clocks: [UInt32: Int] = [:]
    /// Parked start requests: worker → the iteration it wants to start.
    public private(set) var parked: [UInt32: Int] = [:]

    public init(staleness: Int?) {
        precondition(staleness.map { $0 >= 0 } ?? true, "staleness must be ≥ 0")
        self.staleness = staleness
    }

    public var liveWorkers: Set<UInt32> { Set(clocks.keys) }
    /// The slowest live worker's clock (nil when nobody is live).
    public var minClock: Int? { clocks.values.min() }

    /// Whether a worker may start iteration `clock` now.
    public func mayStart(clock: Int) -> Bool {
        guard let s = staleness, let minimum = minClock else { return true }
        return minimum >= clock - s
    }

    /// A worker enters at `clock` (default: the current minimum, or 0). Returns its clock.
    @discardableResult
    public mutating func join(_ worker: UInt32, clock: Int? = nil) -> Int {
        let start = clock ?? minClock ?? 0
        clocks[worker] = start
        return start
    }

    public enum StartDecision: Equatable, Sendable {
        case proceed
        case park
    }

    /// A live worker asks to start iteration `clock`.
    public mutating func requestStart(_ worker: UInt32, clock: Int) -> StartDecision {
        precondition(clocks[worker] != nil, "requestStart from a worker that is not live")
        if mayStart(clock: clock) { return .proceed }
        parked[worker] = clock
        return .park
    }

    /// A live worker pushed its update: its clock advances. Returns the parked workers now released.
    public mutating func pushed(_ worker: UInt32) -> [UInt32] {
        guard let clock = clocks[worker] else { return [] }
        clocks[worker] = clock + 1
        return releaseReady()
    }

    /// A worker left (dead or gone). Its parked request is dropped; others may be released.
    public mutating func leave(_ worker: UInt32) -> [UInt32] {
        clocks[worker] = nil
        parked[worker] = nil
        return releaseReady()
    }

    /// Removes and returns every parked request, whether or not it may start (the job ended).
    public mutating func drainParked() -> [UInt32] {
        defer { parked = [:] }
        return parked.keys.sorted()
    }

    /// Releases every parked request that may start now, oldest clock first.
    public mutating func releaseAll() -> [UInt32] { releaseReady() }

    private mutating func releaseReady() -> [UInt32] {
        // Most pushes release nobody: find that out without building anything.
        guard !parked.isEmpty else { return [] }
        if let s = staleness, let minimum = minClock, !parked.values.contains(where: { minimum >= $0 - s }) {
            return []
        }
        let ready = parked.filter { mayStart(clock: $0.value) }.sorted { ($0.value, $0.key) < ($1.value, $1.key) }
        for (worker, _) in ready { parked[worker] = nil }
        return ready.map(\.key)
    }
}
