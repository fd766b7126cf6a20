import ChimeraML
import ChimeraWire
import Foundation
import Logging
import ZeroMQ

/// Sharded jobs: the worker pushes each range of its update to the server holding it and reads the
/// weights from all of them; the master gets the loss and keeps the clock (proto/README.md,
/// "Parameter servers").
extension WorkerNode {
    /// Waits on servers give up when the job stopped (the master ends it when a server dies) or the
    /// master is gone; `end` then says how the job ended.
    private func abandonServerWait(job: UInt64, end: inout JobEnd?) -> Bool {
        if shouldAbandonWait { return true }
        if let stopped = try? pollBroadcast(jobID: job) {
            end = stopped
            return true
        }
        return false
    }

    /// Reads every server's range into `weights` once it has replayed `events` of the job's events.
    /// nil when read; otherwise how the job ends.
    func pullShards(
        _ links: ShardLinks, job: UInt64, clock: Int, events: UInt64, into weights: inout [Float], timeout: Int32
    ) throws -> JobEnd? {
        var pull = Chimera_V1_WeightPull()
        pull.workerID = workerID
        pull.session = session
        pull.jobID = job
        pull.clock = UInt64(clock)
        pull.afterEvents = events
        var end: JobEnd?
        var failure: String?
        var done = false
        let abandon = { () -> Bool in self.abandonServerWait(job: job, end: &end) }
        let answered = try weights.withUnsafeMutableBufferPointer { all in
            try links.exchange(
                timeout: timeout, abandon: abandon,
                write: { _, socket, requestID in
                    try socket.send(try WireCodec.encode(WireMessage(.weightPull(pull), requestID: requestID)))
                },
                read: { index, reply in
                    let range = links.servers[index].range
                    switch reply {
                    case .weights(let message):
                        guard message.tensor.shape == [1, range.count] else {
                            failure =
                                "server \(links.servers[index].endpoint) sent \(message.tensor.shape) weights, expected [1, \(range.count)]"
                            return
                        }
                        if message.body.done { done = true }
                        message.tensor.readFloats(into: UnsafeMutableBufferPointer(rebasing: all[range]))
                    case .message(let message):
                        if case .weights(let header) = message.body, header.done {
                            done = true
                        } else if case .error(let error) = message.body {
                            failure = "server \(links.servers[index].endpoint): \(error.message)"
                        } else {
                            failure =
                                "server \(links.servers[index].endpoint) answered a pull with \(message.body?.kindName ?? "nothing")"
                        }
                    }
                })
        }
        if !answered { return end ?? abandonedWait(job: job) }
        if done { return .finished }
        if let failure { return try failJob(job, because: failure) }
        return nil
    }

    /// Pushes each range of `update` to its server. nil when every server took its range.
    func pushShards(
        _ links: ShardLinks, _ push: Chimera_V1_GradientPush, update: [Float], job: UInt64, timeout: Int32
    ) throws -> JobEnd? {
        var end: JobEnd?
        var failure: String?
        let abandon = { () -> Bool in self.abandonServerWait(job: job, end: &end) }
        let answered = try update.withUnsafeBufferPointer { all in
            try links.exchange(
                timeout: timeout, abandon: abandon,
                write: { index, socket, requestID in
                    let range = links.servers[index].range
                    try RoundCodec.send(
                        push, requestID: requestID, update: UnsafeBufferPointer(rebasing: all[range]), outputs: 1,
                        stride: range.count, on: socket)
                },
                read: { index, reply in
                    guard case .message(let message) = reply, case .ack = message.body else {
                        if case .message(let message) = reply, case .error(let error) = message.body {
                            failure = "server \(links.servers[index].endpoint) refused the update: \(error.message)"
                        } else {
                            failure = "server \(links.servers[index].endpoint) answered a push with something else"
                        }
                        return
                    }
                })
        }
        if !answered { return end ?? abandonedWait(job: job) }
        if let failure { return try failJob(job, because: failure) }
        return nil
    }

    /// Tells the master this worker cannot go on with the job (it ends the job with `reason`).
    func failJob(_ job: UInt64, because reason: String) throws -> JobEnd {
        logger.warning("job \(job): \(reason)")
        var result = Chimera_V1_WorkerResult()
        result.workerID = workerID
        result.session = session
        result.jobID = job
        result.failed = true
        result.error = reason
        _ = try call(WireMessage(.workerResult(result)), timeout: options.requestTimeoutMilliseconds)
        return .stopped
    }
}
