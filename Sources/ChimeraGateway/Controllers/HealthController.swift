import ChimeraCluster
import Hummingbird

/// `/healthz` (the master answers: the bridge's probe asks it twice a second) and `/readyz` (it also
/// has a ready worker, i.e. a fit could start now).
struct HealthController: GatewayController {
    let bridge: MasterBridge

    var routes: [GatewayRoute] {
        let bridge = bridge
        return [
            GatewayRoute(
                method: .get, path: "/healthz",
                summary: "Whether the master answers (503 MasterUnavailable or CurveKeyRefused if not)",
                responseSchema: "Health", errors: [503]
            ) { _, _ in
                if let problem = bridge.probe.problem { throw GatewayError.from(problem) }
                return try json(HealthView(status: "ok", master: "reachable"))
            },
            GatewayRoute(
                method: .get, path: "/readyz",
                summary: "Whether a fit could start now: the master answers and at least one worker is ready",
                responseSchema: "Health", errors: [503]
            ) { _, _ in
                if let problem = bridge.probe.problem { throw GatewayError.from(problem) }
                let ready = bridge.probe.lastCluster?.readyWorkers ?? 0
                guard ready > 0 else {
                    throw GatewayError(.serviceUnavailable, "NoWorkers", "the master answers but no worker is ready")
                }
                return try json(HealthView(status: "ready", master: "reachable", readyWorkers: ready))
            },
        ]
    }
}
