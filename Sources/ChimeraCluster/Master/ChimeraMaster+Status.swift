import ChimeraML
import ChimeraWire
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// What the master tells about itself: the cluster status and a job's status and report.
extension ChimeraMaster {
    /// Every live worker and the 256 most recently seen dead ones (a status answer stays small).
    func workerClocks(_ current: Job?) -> [Chimera_V1_WorkerClock] {
        let now = monotonicSeconds()
        return membership.listing(deadLimit: 256).map { record in
            Chimera_V1_WorkerClock.with {
                $0.workerID = record.id
                $0.name = record.name
                $0.clock = UInt64(current?.state.clock(of: record.id) ?? (current == nil ? 0 : record.lastClock))
                $0.alive = record.alive
                $0.ready = record.alive && record.subscribed
                $0.barrierWaitSeconds = record.barrierWaitSeconds
                $0.pid = record.pid
                $0.host = record.host
                $0.rows = UInt64(record.rows)
                $0.silentSeconds = record.alive ? max(0, now - record.lastSeen) : 0
                if let pipeline = current?.pipeline, let stage = pipeline.assignments[record.id] {
                    $0.stage =
                        "stage \(stage.stage) of \(pipeline.stageCount), replica \(stage.replica), layers \(stage.firstLayer)..<\(stage.endLayer)"
                }
            }
        }
    }

    func clusterStatus() -> Chimera_V1_ClusterStatus {
        Chimera_V1_ClusterStatus.with {
            $0.mode = options.mode == .aggregation ? .aggregation : .parameterServer
            $0.workers = workerClocks(job)
            $0.servers = serverStatuses()
            // Idle: the last job, whatever its kind (0 and unspecified before the first).
            $0.currentJobID = job?.id ?? aggregation?.id ?? lastJob?.id ?? 0
            $0.currentJobState = isBusy ? .running : lastJob?.state ?? .unspecified
            $0.iteration = UInt64(job?.state.completedIterations ?? (isBusy ? 0 : Int(lastJob?.report.iterations ?? 0)))
            $0.loss = job?.state.currentLoss ?? (isBusy ? 0 : lastJob?.report.finalLoss ?? 0)
            $0.rejectedMessages = UInt64(counters.rejectedTotal)
            $0.rejectedByKind = counters.rejected.mapValues(UInt64.init)
            $0.bytesSent = UInt64(counters.bytesSent)
            $0.bytesReceived = UInt64(counters.bytesReceived)
            $0.iterationsTotal = UInt64(counters.iterations + (job?.state.completedIterations ?? 0))
            if let current = job {
                let elapsed = monotonicSeconds() - current.startedAt
                $0.iterationsPerSecond = elapsed > 0 ? Double(current.state.completedIterations) / elapsed : 0
            }
            $0.stalenessHistogram = MasterCounters.sum(counters.staleness, job?.state.stalenessHistogram ?? []).map(
                UInt64.init)
            $0.barrierWaitSeconds = counters.barrierWaitSeconds + (job == nil ? 0 : membership.barrierWaitSeconds)
            $0.jobsByState = counters.jobsByState.mapValues(UInt64.init)
        }
    }

    func jobStateName(_ state: Chimera_V1_JobState) -> String {
        switch state {
        case .succeeded: "succeeded"
        case .failed: "failed"
        case .cancelled: "cancelled"
        case .running: "running"
        default: "unknown"
        }
    }

    /// The losses after iteration `after` (at most the last `lossPointLimit`).
    static func lossPoints(_ losses: [Double], seconds: [Double], after: UInt64) -> [Chimera_V1_LossPoint] {
        let start = max(Int(min(after, UInt64(losses.count))), losses.count - lossPointLimit)
        return (start..<losses.count).map { i in
            Chimera_V1_LossPoint.with {
                $0.iteration = UInt64(i + 1)
                $0.loss = losses[i]
                $0.seconds = i < seconds.count ? seconds[i] : 0
            }
        }
    }

    static let lossPointLimit = 4096

    func jobStatus(_ request: Chimera_V1_JobStatusRequest, requestID: UInt64) -> WireMessage {
        let id = request.jobID
        if let current = aggregation, current.id == id || id == 0 {
            return WireMessage(
                .jobStatus(
                    Chimera_V1_JobStatus.with {
                        $0.jobID = current.id
                        $0.state = .running
                        $0.clocks = workerClocks(nil)
                        $0.report = aggregationReport(current)
                        $0.config = current.configuration.wire
                    }), requestID: requestID)
        }
        if let current = job, current.id == id || id == 0 {
            return WireMessage(
                .jobStatus(
                    Chimera_V1_JobStatus.with {
                        $0.jobID = current.id
                        $0.state = .running
                        $0.iteration = UInt64(current.state.completedIterations)
                        $0.loss = current.state.currentLoss ?? 0
                        $0.clocks = workerClocks(current)
                        $0.stalenessHistogram = current.state.stalenessHistogram.map(UInt64.init)
                        $0.report = fitReport(current)
                        $0.config = current.state.configuration.wire
                        if request.hasLossesAfter {
                            $0.losses = Self.lossPoints(
                                current.state.lossHistory, seconds: current.lossSeconds, after: request.lossesAfter)
                        }
                    }), requestID: requestID)
        }
        if let summary = lastJob, summary.id == id || id == 0 {
            return WireMessage(
                .jobStatus(
                    Chimera_V1_JobStatus.with {
                        $0.jobID = summary.id
                        $0.state = summary.state
                        $0.iteration = summary.report.iterations
                        $0.loss = summary.report.finalLoss
                        $0.clocks = summary.report.clocks
                        $0.stalenessHistogram = summary.report.stalenessHistogram
                        $0.report = summary.report
                        $0.error = summary.error
                        $0.config = summary.config
                        if request.hasLossesAfter {
                            $0.losses = Self.lossPoints(
                                summary.lossHistory, seconds: summary.lossSeconds, after: request.lossesAfter)
                        }
                    }), requestID: requestID)
        }
        return .error(.unknownJob, "no job \(id)", requestID: requestID)
    }
}

extension ChimeraMaster {
    /// The registered parameter servers and the ranges they hold in the running job.
    func serverStatuses() -> [Chimera_V1_ServerStatus] {
        let now = monotonicSeconds()
        return servers.byName.map { record in
            Chimera_V1_ServerStatus.with {
                $0.name = record.name
                $0.endpoint = record.endpoint
                $0.host = record.host
                $0.pid = record.pid
                $0.silentSeconds = record.pendingPoll != nil ? 0 : max(0, now - record.lastSeen)
                if let shards = job?.shards, let index = shards.shardIndex(of: record.id) {
                    $0.inJob = true
                    $0.shard = UInt32(index)
                    $0.start = UInt64(shards.shards[index].range.lowerBound)
                    $0.end = UInt64(shards.shards[index].range.upperBound)
                    $0.eventsReplayed = UInt64(shards.replayed[record.id] ?? 0)
                }
            }
        }
    }
}
