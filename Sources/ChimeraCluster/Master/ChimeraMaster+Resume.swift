import ChimeraML
import ChimeraWire
import Foundation
import Logging

/// Resuming the job a crashed (or stopped) master left mid-fit: a master started with `--resume`
/// finds the job's checkpoint, waits for its workers to come back (their heartbeats meet "unknown
/// worker" and they say hello again within about two liveness periods), then goes on from the
/// checkpoint's iteration under the same job id.
extension ChimeraMaster {
    /// The checkpoint's workers that are registered and ready again, and how many the resume waits for.
    func resumeProgress(_ plan: FittedModel) -> (back: [String], wanted: Int) {
        let ready = membership.ready.map(\.name)
        if let expected = options.expectWorkers { return (ready, expected) }
        let names = Set(plan.clocks.keys)
        return (ready.filter(names.contains), names.count)
    }

    /// Why a fit must wait while an interrupted job waits for its workers (nil: it need not).
    func resumeWaitText() -> String? {
        guard let plan = interrupted, monotonicSeconds() < resumeDeadline else { return nil }
        let (back, wanted) = resumeProgress(plan)
        var text =
            "job \(plan.jobID ?? 0) is resuming from its checkpoint (iteration \(plan.iterations)): \(back.count) of \(wanted) workers back"
        if let shards = plan.configuration.servers, shards > 0 {
            text += ", \(min(servers.servers.count, shards)) of \(shards) parameter servers"
        }
        return text
    }

    /// With `--expect-workers N`, why a fit must wait for workers (nil: N are ready, or the wait is
    /// over). A master restarted under its clients would otherwise train on whoever came back first.
    func expectedWorkersWaitText() -> String? {
        guard let expected = options.expectWorkers else { return nil }
        let ready = membership.ready.count
        guard ready < expected else { return nil }
        guard monotonicSeconds() < startedAt + options.resumeWaitSeconds else {
            if !warnedFewWorkers {
                warnedFewWorkers = true
                logger.warning(
                    "\(ready) of the \(expected) expected workers are ready after \(Int(options.resumeWaitSeconds)) s; fits go on with those"
                )
            }
            return nil
        }
        return
            "waiting for the expected workers: \(ready) of \(expected) ready (--expect-workers; at most \(Int(options.resumeWaitSeconds)) s after start)"
    }

    /// Starts the interrupted job once its workers are back, or at the deadline with those that are.
    func resumeIfReady(_ now: Double) throws {
        guard let plan = interrupted, job == nil else { return }
        let (back, wanted) = resumeProgress(plan)
        if back.count != resumeReported {
            resumeReported = back.count
            logger.info("job \(plan.jobID ?? 0) waits to resume: \(back.count) of \(wanted) workers back")
        }
        guard back.count >= wanted || (now >= resumeDeadline && !back.isEmpty) else { return }
        // A job held on parameter servers resumes once that many are registered again.
        if let shards = plan.configuration.servers, shards > servers.servers.count {
            guard now < resumeDeadline else {
                return try abandonResume(
                    plan,
                    "it needs \(shards) parameter servers, \(servers.servers.count) registered after \(Int(options.resumeWaitSeconds)) s; its checkpoint (iteration \(plan.iterations)) stays in checkpoint.json"
                )
            }
            return
        }
        if back.count < wanted {
            logger.warning(
                "job \(plan.jobID ?? 0) resumes with \(back.count) of \(wanted) workers after \(Int(options.resumeWaitSeconds)) s: the missing workers' data is left out until they return"
            )
        }
        interrupted = nil
        var request = Chimera_V1_FitRequest()
        request.kind = .parameterServer
        request.asynchronous = true
        request.config = plan.configuration.wire
        try startJob(nil, request, 0, resume: plan)
    }

    /// The interrupted job cannot resume: it ends failed (a waiting client is told why).
    func abandonResume(_ plan: FittedModel, _ why: String) throws {
        interrupted = nil
        let error = "job \(plan.jobID ?? 0) cannot resume: \(why)"
        logger.warning("\(error)")
        if let summary = lastJob, summary.id == plan.jobID, summary.state == .running {
            lastJob = JobSummary(
                id: summary.id, state: .failed, report: summary.report, error: error, lossHistory: summary.lossHistory,
                lossSeconds: summary.lossSeconds, config: summary.config)
            counters.finished("failed")
        }
        if let client = resumingClient {
            resumingClient = nil
            try reply(to: client.peer, .error(.noWorkers, error, requestID: client.requestID))
        }
    }

    /// At start: the interrupted job of `checkpoint`, if it is one, becomes the plan.
    func planResume(_ checkpoint: FittedModel) {
        guard options.mode == .parameterServer, checkpoint.isInterrupted else { return }
        interrupted = checkpoint
        resumeDeadline = monotonicSeconds() + options.resumeWaitSeconds
        let names = checkpoint.clocks.keys.sorted()
        let wanted = options.expectWorkers.map { "\($0) workers" } ?? "its workers (\(names.joined(separator: ", ")))"
        logger.info(
            "job \(checkpoint.jobID ?? 0) was interrupted at iteration \(checkpoint.iterations) of \(checkpoint.configuration.maxIterations); it resumes when \(wanted) are back (at most \(Int(options.resumeWaitSeconds)) s, then with those that are)"
        )
    }
}
