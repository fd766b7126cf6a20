import ChimeraML
import ChimeraWire
import Foundation
import SwiftProtobuf
import ZeroMQ

/// Feature-partitioned jobs: the master sums the blocks' partial margins for each iteration and
/// answers every block with the sum and the bias (the pushes that follow are handled as any round's).
extension ChimeraMaster {
    func handleMargins(_ peer: Frame, _ body: Chimera_V1_PartialMargins, _ message: WireMessage) throws {
        let requestID = message.control.requestID
        guard let current = job, current.id == body.jobID, let features = current.features,
            features.blocks[body.workerID] != nil
        else {
            counters.reject("stale")
            return try reply(
                to: peer,
                .error(
                    .stale, "job \(body.jobID) is not a feature-partitioned job of this worker", requestID: requestID))
        }
        guard current.state.clock(of: body.workerID) == Int(body.clock) else {
            counters.reject("stale")
            return try reply(
                to: peer,
                .error(
                    .stale,
                    "margins for iteration \(body.clock), but worker \(body.workerID) is at iteration \(current.state.clock(of: body.workerID) ?? 0)",
                    requestID: requestID))
        }
        let margins: Tensor
        do {
            margins = try message.tensor(named: "margins", dtype: .float32, shape: [features.rows, features.outputs])
        } catch {
            counters.reject(error.code.metricLabel)
            return try reply(to: peer, .error(.wrongShape, error.message, requestID: requestID))
        }
        let weights = current.state.weights
        let stride = current.state.objective.stride
        let biasColumn = current.state.objective.features
        let address = ClientAddress(peer: try copy(peer), requestID: requestID)
        guard
            let done = job?.features?.add(
                body.workerID, clock: Int(body.clock), margins: margins, reply: address,
                bias: { weights[$0 * stride + biasColumn] })
        else { return }
        let header = Chimera_V1_Margins.with {
            $0.jobID = current.id
            $0.clock = body.clock
        }
        // One tensor shared by every reply's frame.
        let tensor = Tensor.float32(done.sum, shape: [features.rows, features.outputs])
        for waiting in done.replies {
            try reply(
                to: waiting.peer,
                WireMessage(.margins(header), requestID: waiting.requestID, tensors: [NamedTensor("margins", tensor)]))
        }
    }

    /// Answers margin requests still waiting when the job ends: `done`.
    func releaseMargins() throws {
        guard let id = job?.id, let waiting = job?.features?.drain() else { return }
        for address in waiting {
            try reply(
                to: address.peer,
                WireMessage(
                    .margins(
                        Chimera_V1_Margins.with {
                            $0.jobID = id
                            $0.done = true
                        }), requestID: address.requestID))
        }
    }
}
