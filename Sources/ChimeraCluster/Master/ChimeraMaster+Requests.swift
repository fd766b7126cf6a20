import ChimeraML
import ChimeraWire
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// Client requests (gateway, `chimera fit` / `predict` / `cancel`, on the control endpoint): handed to
/// the job ledger, the training and bagging jobs, the status and the predictions.
extension ChimeraMaster {
    func handleControlMessage(_ peer: Frame, _ message: WireMessage) throws {
        let requestID = message.control.requestID
        // Under CURVE a worker's key may read status, not command the cluster.
        switch message.body {
        case .statusRequest, .jobStatusRequest: break
        default:
            guard peerRole.mayCommand else {
                counters.reject("forbidden_role")
                logRejection("forbidden_role", "refused a \(message.body?.kindName ?? "?") from a worker's CURVE key")
                return try reply(
                    to: peer,
                    .error(
                        .forbidden, "this CURVE key is a worker's: it may not send client requests",
                        requestID: requestID))
            }
        }
        switch message.body {
        case .fitRequest(let request):
            if let refusal = jobs.mayStart(request.kind, waiting: resumeWaitText() ?? expectedWorkersWaitText()) {
                return try reply(to: peer, .error(refusal.code, refusal.message, requestID: requestID))
            }
            if let plan = interrupted {
                logger.info("the interrupted job \(plan.jobID ?? 0) is abandoned: a new fit was asked for")
                interrupted = nil
            }
            if options.mode == .aggregation {
                try startAggregation(peer, request, requestID)
            } else {
                try startJob(peer, request, requestID)
            }
        case .predictRequest(let request):
            try predict(peer, request, message)
        case .statusRequest:
            try reply(to: peer, WireMessage(.clusterStatus(clusterStatus()), requestID: requestID))
        case .jobStatusRequest(let request):
            try reply(to: peer, jobStatus(request, requestID: requestID))
        case .cancelJob(let request):
            switch jobs.cancel(
                request.jobID, token: request.jobToken, authenticatedClient: options.curve != nil && peerRole.mayCommand
            ) {
            case .forbidden:
                counters.reject("forbidden_cancel")
                logRejection("forbidden_cancel", "refused to cancel job \(request.jobID): no job token")
                return try reply(
                    to: peer,
                    .error(
                        .forbidden,
                        "cancelling job \(request.jobID) needs its job_token (FitReply.job_token, given to the client that started it)",
                        requestID: requestID))
            case .notRunning:
                return try reply(
                    to: peer, .error(.unknownJob, "job \(request.jobID) is not running", requestID: requestID))
            case .cancel(.aggregation):
                try finishAggregation(state: .cancelled, error: "cancelled")
            case .cancel(.parameterServer):
                try finishJob(state: .cancelled, error: "cancelled")
            }
            try reply(
                to: peer, WireMessage(.ack(Chimera_V1_Ack.with { $0.jobID = request.jobID }), requestID: requestID))
        default:
            counters.reject("unexpected_body")
            try reply(
                to: peer,
                .error(.badRequest, "\(message.body?.kindName ?? "?") is not a control request", requestID: requestID))
        }
    }

    // MARK: Jobs

    // MARK: Status and prediction

}
