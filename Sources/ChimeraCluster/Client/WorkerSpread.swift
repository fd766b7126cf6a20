/// Many workers as a reader wants them: up to `listedUpTo` one line each; beyond, a summary — how many
/// are alive, the spread of their clocks and barrier waits with the outliers named, and the dead ones.
public enum WorkerSpread {
    public static let listedUpTo = 16

    public struct Worker: Sendable, Equatable {
        public var name: String
        public var alive: Bool
        public var clock: Int
        /// Seconds waited at the barrier (nil: not known here).
        public var barrierWait: Double?

        public init(name: String, alive: Bool, clock: Int, barrierWait: Double? = nil) {
            self.name = name
            self.alive = alive
            self.clock = clock
            self.barrierWait = barrierWait
        }
    }

    /// The summary lines (empty when the workers are few enough to list one by one).
    public static func summary(_ workers: [Worker], indent: String = "  ") -> [String] {
        guard workers.count > listedUpTo else { return [] }
        let alive = workers.filter(\.alive)
        let dead = workers.filter { !$0.alive }.map(\.name)
        var lines = ["\(indent)\(workers.count) workers: \(alive.count) alive, \(dead.count) dead"]
        if !dead.isEmpty { lines[0] += " (\(names(dead)))" }
        guard !alive.isEmpty else { return lines }
        let clocks = alive.sorted { ($0.clock, $0.name) < ($1.clock, $1.name) }
        let lagging = clocks.filter { $0.clock == clocks[0].clock }.map(\.name)
        if lagging.count == clocks.count {
            lines.append("\(indent)clocks (alive): all \(clocks[0].clock)")
        } else {
            lines.append(
                "\(indent)clocks (alive): min \(clocks[0].clock) (\(names(lagging))), median \(clocks[clocks.count / 2].clock), max \(clocks[clocks.count - 1].clock)"
            )
        }
        let waits = alive.compactMap { worker in worker.barrierWait.map { (worker.name, $0) } }.sorted { $0.1 < $1.1 }
        if waits.count == alive.count, let least = waits.first, let most = waits.last {
            lines.append(
                "\(indent)barrier wait (alive): min \(seconds(least.1)) (\(least.0): the one the others wait for), median \(seconds(waits[waits.count / 2].1)), max \(seconds(most.1)) (\(most.0))"
            )
        }
        return lines
    }

    /// Up to five names, then how many more.
    static func names(_ names: [String]) -> String {
        names.count <= 5
            ? names.joined(separator: ", ") : names.prefix(5).joined(separator: ", ") + " and \(names.count - 5) more"
    }

    static func seconds(_ value: Double) -> String {
        let rounded = (value * 1000).rounded() / 1000
        return "\(rounded) s"
    }
}
