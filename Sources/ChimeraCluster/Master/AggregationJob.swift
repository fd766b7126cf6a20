import ChimeraML
import ChimeraWire
import SwiftProtobuf
import ZeroMQ

/// A running bagging fit: which workers still fit, what the others sent or why they failed.
struct AggregationJob {
    let id: UInt64
    let configuration: AggregationConfiguration
    let featureNames: [String]
    let classes: [Float]
    /// Class names when the labels are names (`classes` then 0…K−1).
    let classNames: [String]
    let startedAt: Double
    let bytesAtStart: (sent: Int, received: Int)
    var client: (peer: Frame, requestID: UInt64)?
    /// Workers still fitting.
    var pending: Set<UInt32>
    var participants: [UInt32: String]
    var trees: [UInt32: [DecisionTree]] = [:]
    /// Worker name → why it failed.
    var failures: [String: String] = [:]

    var outputs: Int { configuration.task == .classification ? classes.count : 1 }

    var start: Chimera_V1_JobStart {
        Chimera_V1_JobStart.with {
            $0.jobID = id
            $0.kind = .aggregation
            $0.config = configuration.wire
            $0.featureNames = featureNames
            $0.classes = classes.map(Double.init)
            $0.classNames = classNames
        }
    }
}
