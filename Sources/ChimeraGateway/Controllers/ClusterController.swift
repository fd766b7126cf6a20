import ChimeraCluster
import Hummingbird

/// `/v1/chimera/cluster` (workers, liveness, clocks, rejected messages) and `/metrics` (Prometheus).
struct ClusterController: GatewayController {
    let bridge: MasterBridge
    let requestTimeout: Int32

    var routes: [GatewayRoute] {
        let (bridge, requestTimeout) = (bridge, requestTimeout)
        return [
            GatewayRoute(
                method: .get, path: "/v1/chimera/cluster",
                summary: "Workers, liveness, clocks, the current or last job, rejected messages",
                responseSchema: "Cluster", errors: [401, 504]
            ) { _, _ in
                do {
                    return try json(
                        try await bridge.perform { client in try client.cluster(timeoutMilliseconds: requestTimeout) })
                } catch {
                    throw GatewayError.from(error)
                }
            },
            GatewayRoute(
                method: .get, path: "/metrics",
                summary:
                    "Prometheus text: requests and latencies by route, errors by kind, workers, iterations/s, barrier wait, staleness, bytes",
                responseSchema: "Metrics", errors: [401], contentType: "text/plain"
            ) { _, _ in
                let status = try? await bridge.perform { client in
                    try client.status(timeoutMilliseconds: min(requestTimeout, 5_000))
                }
                return Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: GatewayMetrics.render(status))))
            },
        ]
    }
}
