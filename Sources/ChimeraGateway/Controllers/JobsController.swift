import ChimeraCluster
import ChimeraWire
import Hummingbird

/// Asynchronous jobs (an addition): start a fit (202 with its id), follow it, cancel it. The gateway
/// keeps the tokens of the jobs it started, so its callers (who passed its bearer token) can cancel them.
struct JobsController: GatewayController {
    let bridge: MasterBridge
    let limit: Int
    let requestTimeout: Int32
    let tokens = JobTokens()

    var routes: [GatewayRoute] {
        let (bridge, limit, requestTimeout, tokens) = (bridge, limit, requestTimeout, tokens)
        return [
            GatewayRoute(
                method: .post, path: "/v1/chimera/jobs", summary: "Start an asynchronous fit (202 with its id)",
                requestSchema: "FitInput", responseSchema: "JobStarted", errors: [400, 401, 409, 413, 503, 504]
            ) { request, _ in
                // The master's own mode decides the kind of job, and so which settings the body may hold.
                let settings = try fitSettings(try await collect(request, limit: limit))
                do {
                    let started = try await bridge.perform { client in
                        let mode = try client.cluster(timeoutMilliseconds: requestTimeout).fitMode
                        do {
                            return try client.startFit(settings, mode: mode, timeoutMilliseconds: requestTimeout)
                        } catch let error as FitSettingError {
                            throw GatewayError(.badRequest, "ValidationError", error.description)
                        }
                    }
                    tokens.remember(started.id, started.token)
                    return try json(JobStarted(jobID: Int(started.id), state: "running"), status: .accepted)
                } catch {
                    throw GatewayError.from(error)
                }
            },
            GatewayRoute(
                method: .get, path: "/v1/chimera/jobs/{id}",
                summary: "A job's state, iteration, loss, clocks and staleness",
                responseSchema: "Job", errors: [400, 401, 404, 504]
            ) { _, context in
                let id = try jobID(context)
                do {
                    return try json(
                        try await bridge.perform { client in
                            try client.job(id, timeoutMilliseconds: requestTimeout).view
                        })
                } catch {
                    throw GatewayError.from(error)
                }
            },
            GatewayRoute(
                method: .post, path: "/v1/chimera/jobs/{id}/cancel", summary: "Cancel a running job",
                responseSchema: "Job",
                errors: [400, 401, 404, 504]
            ) { _, context in
                let id = try jobID(context)
                do {
                    let view = try await bridge.perform { client in
                        try client.cancel(
                            jobID: id, token: tokens.token(of: id) ?? 0, timeoutMilliseconds: requestTimeout)
                        return try client.job(id, timeoutMilliseconds: requestTimeout).view
                    }
                    return try json(view)
                } catch {
                    throw GatewayError.from(error)
                }
            },
        ]
    }
}
