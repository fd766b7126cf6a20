import ChimeraML
import ChimeraWire
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// A training round's messages: weight pulls parked at the barrier, pushed updates, weights sent back.
extension ChimeraMaster {
    func handlePull(_ peer: Frame, _ pull: Chimera_V1_WeightPull, _ requestID: UInt64) throws {
        guard job?.id == pull.jobID, job?.state.clock(of: pull.workerID) != nil else {
            // No such job (it ended, or this worker is not part of it): tell the worker to stop.
            try reply(
                to: peer,
                WireMessage(
                    .weights(
                        Chimera_V1_Weights.with {
                            $0.jobID = pull.jobID; $0.done = true
                        }), requestID: requestID))
            return
        }
        membership[pull.workerID]?.pendingPull = WorkerRecord.PendingPull(
            peer: peer, requestID: requestID, clock: Int(pull.clock), since: monotonicSeconds())
        // Mutated in place: a copy of the job would copy its weights and histories on every request.
        let replies = job!.state.requestStart(pull.workerID, clock: Int(pull.clock))
        try deliver(replies)
    }

    /// A push read by the round codec (plain form, finite float32 tensor of two dimensions).
    func handleRoundPush(_ peer: Frame, _ push: RoundCodec.Message<Chimera_V1_GradientPush>) throws {
        guard try known(push.body.workerID, push.body.session, peer, push.requestID) else { return }
        try handlePush(peer, push.body, requestID: push.requestID) { shape throws(WireError) in
            guard push.tensor.shape == shape else {
                let name = push.body.isDelta ? "delta" : "gradient"
                throw WireError(
                    .wrongTensor, "tensor \"\(name)\" is float32 \(push.tensor.shape), expected float32 \(shape)")
            }
            return push.tensor
        }
    }

    /// `update` returns the pushed tensor checked to have `shape`; `stageWeights` a stage's slice of
    /// the weights, when it sent one (stages that own their weights).
    func handlePush(
        _ peer: Frame, _ push: Chimera_V1_GradientPush, requestID: UInt64,
        stageWeights: ([Int]) throws(WireError) -> Tensor? = { _ throws(WireError) in nil },
        update: ([Int]) throws(WireError) -> Tensor
    ) throws {
        guard let jobID = job?.id, jobID == push.jobID, let objective = job?.state.objective else {
            counters.reject("stale")
            try reply(to: peer, .error(.stale, "job \(push.jobID) is not running", requestID: requestID))
            return
        }
        // A pipeline stage pushes its slice of the gradient; the others the whole update.
        let slice = job?.pipeline?.slice(of: push.workerID)
        let stages = Float(job?.pipeline?.stageCount ?? 1)
        // A feature block pushes its columns' gradient and the bias's: outputs × (its columns + 1).
        let columns = job?.features?.blocks[push.workerID]
        let blocks = Float(job?.features?.blocks.count ?? 1)
        let owned = job?.pipeline?.stageOwned ?? false
        // nil: a stage that owns its weights pushed no gradient.
        let pushed: Tensor?
        do throws(WireError) {
            if job?.pipeline != nil && slice == nil {
                throw WireError(.wrongTensor, "worker \(push.workerID) is not a stage of pipeline job \(jobID)")
            }
            if job?.shards != nil {
                // The update went to the servers; the master keeps the clock and the loss.
                pushed = nil
            } else if owned, let slice {
                // No gradient: the stage stepped its slice; it may send the slice itself.
                if let weights = try stageWeights([1, slice.count]) {
                    job!.state.replaceWeights(in: slice) { weights.readFloats(into: $0) }
                }
                pushed = nil
            } else {
                if job?.features != nil && columns == nil {
                    throw WireError(.wrongTensor, "worker \(push.workerID) holds no feature block of job \(jobID)")
                }
                pushed = try update(
                    slice.map { [1, $0.count] } ?? columns.map { [objective.outputs, $0.count + 1] }
                        ?? [objective.outputs, objective.stride])
            }
        } catch {
            counters.reject(error.code.metricLabel)
            logger.info("rejected an update from worker \(push.workerID): \(error.message)")
            try reply(to: peer, .error(.wrongShape, error.message, requestID: requestID))
            return
        }
        let (outcome, replies) = job!.state.push(
            push.workerID, clock: Int(push.clock), rows: Int(push.rows), loss: push.loss
        ) { into, scale in
            guard let pushed else { return }
            into.withUnsafeMutableBufferPointer { all in
                if let columns {
                    // Each block's columns count K times (the round's rows are K × n); the bias, sent
                    // by every block, once each.
                    let width = columns.count
                    let values = pushed.floats()
                    for o in 0..<objective.outputs {
                        let row = o * objective.stride
                        for j in 0..<width {
                            all[row + columns.lowerBound + j] += scale * blocks * values[o * (width + 1) + j]
                        }
                        all[row + objective.features] += scale * values[o * (width + 1) + width]
                    }
                    return
                }
                guard let slice else { return pushed.accumulateFloats(into: all, scale: scale) }
                // Every stage of a replica pushes its rows: the round's row count is K × the replicas'
                // rows, so each slice counts K times to make the mean the replicas' mean gradient.
                pushed.accumulateFloats(into: UnsafeMutableBufferPointer(rebasing: all[slice]), scale: scale * stages)
            }
        }
        if outcome == .accepted, push.hasStageStats { job?.pipeline?.record(push.workerID, push.stageStats) }
        switch outcome {
        case .accepted where push.thenPull:
            // The reply to this push is the next iteration's weights, when the barrier allows.
            membership[push.workerID]?.pendingPull = WorkerRecord.PendingPull(
                peer: peer, requestID: requestID, clock: Int(push.clock) + 1, since: monotonicSeconds())
            try deliver(replies)
            let next = job?.state.requestStart(push.workerID, clock: Int(push.clock) + 1) ?? []
            try deliver(next)
            try checkJobProgress()
            return
        case .accepted:
            try reply(
                to: peer,
                WireMessage(
                    .ack(
                        Chimera_V1_Ack.with {
                            $0.jobID = jobID; $0.clock = push.clock
                        }), requestID: requestID))
        case .rejected(let reason):
            counters.reject("stale")
            try reply(to: peer, .error(.stale, reason, requestID: requestID))
        }
        try deliver(replies)
        try checkJobProgress()
    }

    /// Sends the weights to workers the state machine released.
    /// Weights from this many values up go to several workers as one shared tensor.
    static let sharedWeightsFrom = 256 << 10

    func deliver(_ replies: [ParameterServerState.Reply]) throws {
        if job?.shards != nil { return try deliverSharded(replies) }
        guard let current = job, !replies.isEmpty else { return }
        let objective = current.state.objective
        var header = Chimera_V1_Weights()
        header.jobID = current.id
        header.version = UInt64(current.state.version)
        header.minClock = UInt64(current.state.barrier.minClock ?? 0)
        let now = monotonicSeconds()
        let format = current.state.configuration.wireDType
        let large = replies.count > 1 && objective.weightCount >= Self.sharedWeightsFrom
        if let features = current.features {
            // Each block gets its columns' weights.
            for case .weights(let worker, let done) in replies {
                guard let record = membership[worker], let pending = record.pendingPull else { continue }
                record.pendingPull = nil
                record.barrierWaitSeconds += now - pending.since
                header.done = done
                let block = features.blockWeights(current.state.weights, of: worker, stride: objective.stride) ?? []
                let tensors =
                    done
                    ? []
                    : [
                        NamedTensor(
                            "weights", .float32(block, shape: [objective.outputs, block.count / objective.outputs]))
                    ]
                try reply(
                    to: pending.peer, WireMessage(.weights(header), requestID: pending.requestID, tensors: tensors))
            }
            return
        }
        if let pipeline = current.pipeline {
            // Each stage gets its slice.
            for case .weights(let worker, let done) in replies {
                guard let record = membership[worker], let pending = record.pendingPull else { continue }
                record.pendingPull = nil
                record.barrierWaitSeconds += now - pending.since
                header.done = done
                let slice = pipeline.slice(of: worker) ?? 0..<0
                // Stages that own their weights get them once, at the first pull.
                let tensors =
                    done || (pipeline.stageOwned && pending.clock != pipeline.firstClock)
                    ? []
                    : [NamedTensor("weights", .float32(Array(current.state.weights[slice]), shape: [1, slice.count]))]
                try reply(
                    to: pending.peer, WireMessage(.weights(header), requestID: pending.requestID, tensors: tensors))
            }
            return
        }
        if format != .float32 || large {
            // One tensor for the round's replies, sent the generic way: compact weights, or weights
            // large enough that one copy shared by every reply's frame (libzmq sends the tensor's own
            // buffer without copying) beats a copy per send.
            let tensor = Tensor.floats(
                current.state.weights, as: format.dtype, shape: [objective.outputs, objective.stride])
            for case .weights(let worker, let done) in replies {
                guard let record = membership[worker], let pending = record.pendingPull else { continue }
                record.pendingPull = nil
                record.barrierWaitSeconds += now - pending.since
                header.done = done
                try reply(
                    to: pending.peer,
                    WireMessage(
                        .weights(header), requestID: pending.requestID,
                        tensors: done ? [] : [NamedTensor("weights", tensor)]))
            }
            return
        }
        // Sent back to back, each written straight from the weights: libzmq's I/O thread wakes once
        // for the round's replies (as for psround's single PUB send).
        try current.state.weights.withUnsafeBufferPointer { weights in
            for case .weights(let worker, let done) in replies {
                guard let record = membership[worker], let pending = record.pendingPull else { continue }
                record.pendingPull = nil
                record.barrierWaitSeconds += now - pending.since
                header.done = done
                try sendWeights(
                    to: pending.peer, header, requestID: pending.requestID, weights: weights,
                    outputs: objective.outputs,
                    stride: objective.stride)
            }
        }
    }
}
