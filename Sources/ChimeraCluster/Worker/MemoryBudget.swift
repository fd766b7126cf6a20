import ChimeraML
import Foundation

/// Whether a job's model fits in the memory this worker may use — checked before allocating, because
/// a failed allocation in Swift ends the process instead of returning an error.
struct MemoryBudget {
    /// Bytes this worker may use: `--max-memory-mib`, else what the machine (and its cgroup) has free.
    let availableBytes: Int

    init(limitMiB: Int?) {
        if let limitMiB {
            availableBytes = limitMiB << 20
        } else {
            availableBytes = min(Self.memAvailable() ?? Int.max, Self.cgroupHeadroom() ?? Int.max)
        }
    }

    /// Bytes a worker needs for a job: the weights, their gradient and the push's copy, more for local
    /// models (local SGD, EASGD) and error feedback, and a network's activations for a batch.
    static func needed(objective: Objective, configuration: TrainingConfiguration, batchRows: Int) -> Int {
        let p = objective.weightCount
        var floats = 4 * p
        if configuration.workerMode != .gradient { floats += 3 * p }
        if configuration.wireDType != .float32 { floats += p }
        if let network = objective.network {
            floats += 4 * batchRows * network.layerSizes.reduce(0, +)
        }
        return floats * MemoryLayout<Float>.size
    }

    /// Why the job cannot run here, or nil.
    func refusal(objective: Objective, configuration: TrainingConfiguration, batchRows: Int) -> String? {
        let need = Self.needed(objective: objective, configuration: configuration, batchRows: batchRows)
        guard need > availableBytes else { return nil }
        return
            "cannot allocate the model: \(objective.shapeSummary) (\(objective.weightCount) parameters) needs about \(Self.mib(need)) MiB, this worker has \(Self.mib(availableBytes)) MiB"
    }

    static func mib(_ bytes: Int) -> Int { (bytes + (1 << 20) - 1) >> 20 }

    /// MemAvailable from /proc/meminfo.
    static func memAvailable() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let parts = line.split(separator: " ")
            if parts.count >= 2, let kib = Int(parts[1]) { return kib * 1024 }
        }
        return nil
    }

    /// memory.max − memory.current of this process's cgroup (v2), when it has a limit.
    static func cgroupHeadroom() -> Int? {
        let base = "/sys/fs/cgroup"
        guard let limit = try? String(contentsOfFile: "\(base)/memory.max", encoding: .utf8),
            let max = Int(limit.trimmingCharacters(in: .whitespacesAndNewlines)),
            let usage = try? String(contentsOfFile: "\(base)/memory.current", encoding: .utf8),
            let current = Int(usage.trimmingCharacters(in: .whitespacesAndNewlines))
        else { return nil }
        return Swift.max(0, max - current)
    }
}
