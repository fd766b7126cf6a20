import ChimeraCluster
import ChimeraPredictBody
import ChimeraWire
import Foundation
public import Hummingbird
import Logging

/// Settings of `chimera gateway`.
public struct GatewayOptions: Sendable {
    /// The master's control endpoint.
    public var master = "tcp://127.0.0.1:5557"
    public var host = "127.0.0.1"
    /// 0: an OS-chosen port (tests).
    public var port = 8080
    /// Concurrent requests to the master (REQ sockets in the bridge).
    public var bridgeSize = 4
    /// Largest accepted request body, in bytes.
    public var maxBodyBytes = 64 << 20
    /// How long a fit may take before the gateway answers 504.
    public var fitTimeoutSeconds = 3600.0
    /// How long any other request may take before 504.
    public var requestTimeoutSeconds = 30.0
    /// When set, every route but /healthz needs `Authorization: Bearer <token>` (401 otherwise).
    public var bearerToken: String?

    public init() {}
}

/// Builds the gateway application: the Python Chimera's routes and JSON, bridged to the master.
/// Tests call it with `port = 0`; `onServerRunning` reports the bound port.
public func buildGateway(
    _ options: GatewayOptions, bridge: MasterBridge, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    _ = GatewayMetrics.registry  // bootstraps swift-metrics before any metric is made
    let router = Router()
    if let token = options.bearerToken {
        router.add(middleware: BearerTokenMiddleware(token: token, open: ["/healthz", "/readyz", "/openapi.json"]))
    }
    router.add(middleware: RequestMetricsMiddleware())
    router.add(middleware: ErrorShapeMiddleware())
    let limit = options.maxBodyBytes
    let fitTimeout = Int32(min(options.fitTimeoutSeconds * 1000, 2_000_000_000))
    let requestTimeout = Int32(min(options.requestTimeoutSeconds * 1000, 2_000_000_000))

    // Health: whether the master answers (the bridge's probe asks it twice a second); readiness:
    // whether it also has a ready worker, i.e. a fit could start now.
    router.get("/healthz") { _, _ -> Response in
        if let problem = bridge.probe.problem { throw GatewayError.from(problem) }
        return json(["status": "ok", "master": "reachable"])
    }

    router.get("/readyz") { _, _ -> Response in
        if let problem = bridge.probe.problem { throw GatewayError.from(problem) }
        let ready = bridge.probe.lastStatus?.workers.filter(\.ready).count ?? 0
        guard ready > 0 else {
            throw GatewayError(.serviceUnavailable, "NoWorkers", "the master answers but no worker is ready")
        }
        return json(["status": "ready", "master": "reachable", "ready_workers": ready])
    }

    router.get("/metrics") { _, _ -> Response in
        let status = try? await bridge.perform { client in try client.status(timeoutMilliseconds: min(requestTimeout, 5_000)) }
        let text = GatewayMetrics.render(status)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    let openAPI = OpenAPI.json()
    router.get("/openapi.json") { _, _ -> Response in
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: openAPI)))
    }

    // The Python Chimera's two endpoint pairs; each asks the master for its kind of job.
    for (path, kind) in [("parameter-server", Chimera_V1_JobKind.parameterServer), ("aggregation", .aggregation)] {
        router.post("/v1/chimera/\(path)/fit") { request, _ -> FitOK in
            let request = try fitRequest(try fitSettings(try await collect(request, limit: limit)), kind: kind, asynchronous: false)
            do {
                let reply = try await bridge.perform { client in
                    // A fit may rightly take an hour, so first make sure a master answers at all (503 if not).
                    do {
                        _ = try client.status(timeoutMilliseconds: requestTimeout)
                    } catch MasterClientError.timedOut {
                        throw GatewayError(.serviceUnavailable, "MasterUnavailable", "no master answered at \(client.endpoint)")
                    }
                    return try client.fit(request, timeoutMilliseconds: fitTimeout).state
                }
                guard reply == .succeeded else { throw GatewayError(.internalServerError, "FitFailed", "the fit ended \(reply)") }
                return FitOK()
            } catch {
                throw GatewayError.from(error)
            }
        }

        router.post("/v1/chimera/\(path)/predict") { request, _ -> Response in
            // A large body of the only request in flight is split over two threads: start the
            // second one now, while the body is still arriving.
            let alone = PredictBody.enter()
            defer { PredictBody.leave() }
            if alone, let length = request.headers[.contentLength].flatMap({ Int($0) }), length >= JSONReader.splitBytes {
                ParseHelper.shared.wakeEarly()
            }
            let input = try PredictBody.parse(try await collect(request, limit: limit), splitting: alone)
            do {
                let prediction = try await bridge.perform(
                    sending: { client in
                        try client.send(
                            MasterClient.predictMessage(
                                columns: input.columns, x: input.x, probabilities: input.probabilities, kind: kind,
                                fanOut: input.fanOut))
                    },
                    receiving: { client in try client.receivePrediction(timeoutMilliseconds: requestTimeout) })
                return predictResponse(prediction, withProbabilities: input.probabilities)
            } catch {
                throw GatewayError.from(error)
            }
        }
    }

    // Asynchronous jobs (an addition): start a fit and poll it. The gateway keeps the tokens of the
    // jobs it started, so its callers (who passed its bearer token) can cancel them.
    let tokens = JobTokens()
    router.post("/v1/chimera/jobs") { request, _ -> Response in
        // The master's own mode decides the kind of job, and so which settings the body may hold.
        let settings = try fitSettings(try await collect(request, limit: limit))
        do {
            let reply = try await bridge.perform { client in
                let mode = try client.status(timeoutMilliseconds: requestTimeout).mode
                let request = try fitRequest(settings, kind: mode == .aggregation ? .aggregation : .parameterServer, asynchronous: true)
                return try client.fit(request, timeoutMilliseconds: requestTimeout)
            }
            tokens.remember(reply.jobID, reply.jobToken)
            return json(["job_id": Int(reply.jobID), "state": stateName(reply.state)], status: .accepted)
        } catch {
            throw GatewayError.from(error)
        }
    }

    router.get("/v1/chimera/jobs/:id") { _, context -> Response in
        let id = try jobID(context)
        do {
            let status = try await bridge.perform { client in try client.jobStatus(id, timeoutMilliseconds: requestTimeout) }
            return json(jobJSON(status))
        } catch {
            throw GatewayError.from(error)
        }
    }

    router.post("/v1/chimera/jobs/:id/cancel") { _, context -> Response in
        let id = try jobID(context)
        do {
            let status = try await bridge.perform { client in
                var cancel = Chimera_V1_CancelJob()
                cancel.jobID = id
                cancel.jobToken = tokens.token(of: id) ?? 0
                _ = try client.call(WireMessage(.cancelJob(cancel)), timeoutMilliseconds: requestTimeout)
                return try client.jobStatus(id, timeoutMilliseconds: requestTimeout)
            }
            return json(jobJSON(status))
        } catch {
            throw GatewayError.from(error)
        }
    }

    router.get("/v1/chimera/cluster") { _, _ -> Response in
        do {
            let status = try await bridge.perform { client in
                try client.status(timeoutMilliseconds: requestTimeout)
            }
            let workers: [[String: Any]] = status.workers.map {
                [
                    "id": Int($0.workerID), "name": $0.name, "alive": $0.alive, "ready": $0.ready, "clock": Int($0.clock),
                    "pid": Int($0.pid), "host": $0.host,
                ]
            }
            return json([
                "mode": status.mode == .aggregation ? "aggregation" : "parameter-server",
                "workers": workers, "job_id": Int(status.currentJobID), "iteration": Int(status.iteration), "loss": status.loss,
                "rejected_messages": Int(status.rejectedMessages),
            ])
        } catch {
            throw GatewayError.from(error)
        }
    }

    var logger = Logger(label: "chimera-gateway")
    logger.logLevel = .warning
    return Application(
        router: router,
        server: .http1LargeReads,
        configuration: .init(address: .hostname(options.host, port: options.port), serverName: "chimera-gateway"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
        logger: logger)
}

/// The request body, refused with 413 beyond `limit` bytes.
private func collect(_ request: Request, limit: Int) async throws -> ByteBuffer {
    do {
        return try await request.body.collect(upTo: limit)
    } catch {
        throw GatewayError(.contentTooLarge, "PayloadTooLarge", "the request body is larger than \(limit) bytes")
    }
}

private func json(_ object: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// A FitRequest from an optional JSON body of fit settings (an empty body: the defaults), checked
/// against the fit vocabulary for the fit's mode.
private func fitRequest(_ settings: FitSettings, kind: Chimera_V1_JobKind, asynchronous: Bool) throws(GatewayError)
    -> Chimera_V1_FitRequest
{
    var fit = Chimera_V1_FitRequest()
    fit.kind = kind
    fit.asynchronous = asynchronous
    do {
        fit.config = try settings.wire(mode: kind == .aggregation ? .aggregation : .parameterServer)
    } catch {
        throw GatewayError(.badRequest, "ValidationError", error.description)
    }
    return fit
}

/// The settings of a fit body; an unknown field, a wrong type or a value out of range is a 400 naming it.
private func fitSettings(_ body: ByteBuffer) throws(GatewayError) -> FitSettings {
    do {
        return try FitSettings.parse(json: Data(body.readableBytesView))
    } catch {
        throw GatewayError(.badRequest, error.kind == .malformed ? "InvalidJSON" : "ValidationError", error.description)
    }
}

private func jobID(_ context: some RequestContext) throws -> UInt64 {
    guard let text = context.parameters.get("id"), let id = UInt64(text), id > 0 else {
        throw GatewayError(.badRequest, "ValidationError", "the job id must be a positive integer")
    }
    return id
}

private func stateName(_ state: Chimera_V1_JobState) -> String {
    switch state {
    case .queued: "queued"
    case .running: "running"
    case .succeeded: "succeeded"
    case .failed: "failed"
    case .cancelled: "cancelled"
    default: "unknown"
    }
}

/// A job's progress as JSON: iteration, loss, per-worker clocks and the staleness histogram.
private func jobJSON(_ status: Chimera_V1_JobStatus) -> [String: Any] {
    var object: [String: Any] = [
        "job_id": Int(status.jobID), "state": stateName(status.state), "iteration": Int(status.iteration), "loss": status.loss,
        "clocks": status.clocks.map { ["worker": $0.name, "clock": Int($0.clock), "alive": $0.alive] },
        "staleness_histogram": status.stalenessHistogram.map { Int($0) },
        "wall_seconds": status.report.wallSeconds,
    ]
    if status.report.members > 0 { object["members"] = Int(status.report.members) }
    if !status.report.failedWorkers.isEmpty { object["failed_workers"] = status.report.failedWorkers }
    if !status.error.isEmpty { object["error"] = status.error }
    if !status.report.backoffs.isEmpty { object["backoffs"] = status.report.backoffs }
    return object
}
