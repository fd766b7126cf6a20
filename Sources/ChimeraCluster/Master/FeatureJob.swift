import ChimeraML
import ChimeraWire
import Foundation
import SwiftProtobuf
import ZeroMQ

/// A feature-partitioned job: which columns each worker holds, and the iteration's margins being
/// summed. The master is the reduce: each block sends X_j W_jᵀ, and once every block has, all get the
/// sum plus the bias; their gradient blocks then come back as the round's pushes.
struct FeatureJob {
    /// By worker id: its columns of the job's features.
    let blocks: [UInt32: Range<Int>]
    let rows: Int
    let outputs: Int
    /// The iteration whose margins are being summed, their sum, who sent theirs, and where to answer.
    private(set) var clock = -1
    private(set) var sum: [Float] = []
    private(set) var waiting: [UInt32: ClientAddress] = [:]

    init(blocks: [UInt32: Range<Int>], rows: Int, outputs: Int) {
        self.blocks = blocks
        self.rows = rows
        self.outputs = outputs
    }

    var wire: Chimera_V1_FeaturePartition {
        Chimera_V1_FeaturePartition.with {
            $0.blocks = blocks.sorted { $0.value.lowerBound < $1.value.lowerBound }.map { worker, columns in
                Chimera_V1_ColumnBlock.with {
                    $0.workerID = worker
                    $0.firstColumn = UInt32(columns.lowerBound)
                    $0.endColumn = UInt32(columns.upperBound)
                }
            }
        }
    }

    /// A ready worker as a feature partition sees it.
    struct Candidate {
        let id: UInt32
        let name: String
        let rows: Int
        let featureNames: [String]
        let labelDigest: UInt64
    }

    /// Every ready worker is a block, in the order of their names (worker-2 before worker-10); the job's
    /// features are their columns in that order.
    static func assign(_ unordered: [Candidate]) -> Result<
        (features: [String], blocks: [UInt32: Range<Int>]), FitRefusal
    > {
        let workers = unordered.sorted { $0.name.compare($1.name, options: .numeric) == .orderedAscending }
        guard let first = workers.first else { return .failure(FitRefusal("no worker is connected", code: .noWorkers)) }
        if let other = workers.first(where: { $0.rows != first.rows || $0.labelDigest != first.labelDigest }) {
            return .failure(
                FitRefusal(
                    "feature blocks must hold the same rows with the same labels: \(first.name) has \(first.rows) rows, \(other.name) \(other.rows)\(other.rows == first.rows ? " with other labels" : ""); make the blocks with chimera data split-columns"
                ))
        }
        var features: [String] = []
        var holder: [String: String] = [:]
        var blocks: [UInt32: Range<Int>] = [:]
        for worker in workers {
            for name in worker.featureNames {
                if let other = holder[name] {
                    return .failure(
                        FitRefusal(
                            "column \"\(name)\" is held by both \(other) and \(worker.name): each feature block needs its own columns"
                        ))
                }
                holder[name] = worker.name
            }
            blocks[worker.id] = features.count..<(features.count + worker.featureNames.count)
            features += worker.featureNames
        }
        return .success((features, blocks))
    }

    /// Takes a block's partial margins for `clock`; returns the replies to send when it completed the sum.
    mutating func add(
        _ worker: UInt32, clock: Int, margins: Tensor, reply: ClientAddress, bias: (Int) -> Float
    ) -> (replies: [ClientAddress], sum: [Float])? {
        if clock != self.clock {
            self.clock = clock
            sum = [Float](repeating: 0, count: rows * outputs)
            waiting = [:]
        }
        sum.withUnsafeMutableBufferPointer { margins.accumulateFloats(into: $0) }
        waiting[worker] = reply
        guard waiting.count == blocks.count else { return nil }
        for index in sum.indices { sum[index] += bias(index % outputs) }
        let replies = Array(waiting.values)
        let total = sum
        waiting = [:]
        self.clock = -1
        return (replies, total)
    }

    /// The requests still waiting for margins (answered `done` when the job ends).
    mutating func drain() -> [ClientAddress] {
        defer { waiting = [:] }
        return Array(waiting.values)
    }

    /// A block's slice of the weights: outputs × its columns.
    func blockWeights(_ weights: [Float], of worker: UInt32, stride: Int) -> [Float]? {
        guard let columns = blocks[worker] else { return nil }
        return (0..<outputs).flatMap { o in
            weights[(o * stride + columns.lowerBound)..<(o * stride + columns.upperBound)]
        }
    }
}
