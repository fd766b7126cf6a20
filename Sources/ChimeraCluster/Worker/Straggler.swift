public import ChimeraML

/// Straggler injection for tuning runs: how much longer than its real compute a worker takes.
public struct Straggler: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Every iteration takes this many times its compute (plus base delay): a constantly slower worker.
    public var slowdown = 1.0
    /// Transient pauses: with this probability per iteration, pause `pauseMilliseconds`.
    public var pauseProbability = 0.0
    public var pauseMilliseconds = 0.0
    /// Periodic pauses: every `pauseEvery` iterations, pause `pauseMilliseconds` (0: never).
    public var pauseEvery = 0
    /// Seeds the transient pauses (mixed with the worker's name), so runs repeat.
    public var seed: UInt64 = 1

    public init() {}

    public var isActive: Bool { slowdown > 1 || (pauseMilliseconds > 0 && (pauseProbability > 0 || pauseEvery > 0)) }

    /// The time to add after an iteration whose real compute took `compute` seconds.
    public func extraSeconds(compute: Double, baseDelay: Double, iteration: Int, random: inout SplitMix64) -> Double {
        var extra = baseDelay
        if slowdown > 1 { extra += (compute + baseDelay) * (slowdown - 1) }
        let pause = pauseMilliseconds / 1000
        if pauseEvery > 0, (iteration + 1) % pauseEvery == 0 { extra += pause }
        if pauseProbability > 0, Double(random.nextUnit()) < pauseProbability { extra += pause }
        return extra
    }

    public var description: String {
        var parts: [String] = []
        if slowdown > 1 { parts.append("slowdown ×\(slowdown)") }
        if pauseProbability > 0 { parts.append("pause \(pauseMilliseconds) ms with p=\(pauseProbability)") }
        if pauseEvery > 0 { parts.append("pause \(pauseMilliseconds) ms every \(pauseEvery)") }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }
}
