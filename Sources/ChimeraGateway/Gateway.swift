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
    let fitTimeout = Int32(min(options.fitTimeoutSeconds * 1000, 2_000_000_000))
    let requestTimeout = Int32(min(options.requestTimeoutSeconds * 1000, 2_000_000_000))
    let controllers: [any GatewayController] = [
        HealthController(bridge: bridge),
        ChimeraController(
            bridge: bridge, limit: options.maxBodyBytes, fitTimeout: fitTimeout, requestTimeout: requestTimeout),
        JobsController(bridge: bridge, limit: options.maxBodyBytes, requestTimeout: requestTimeout),
        ClusterController(bridge: bridge, requestTimeout: requestTimeout),
    ]
    var routes = controllers.flatMap(\.routes)
    // The document describes every route, itself included.
    let openAPIRoute = { (document: Data) in
        GatewayRoute(
            method: .get, path: "/openapi.json", summary: "This document", responseSchema: "Document", errors: []
        ) { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: document)))
        }
    }
    let document = OpenAPI.json(routes + [openAPIRoute(Data())])
    routes.append(openAPIRoute(document))
    router.add(routes)

    var logger = Logger(label: "chimera-gateway")
    logger.logLevel = .warning
    return Application(
        router: router,
        server: .http1LargeReads,
        configuration: .init(address: .hostname(options.host, port: options.port), serverName: "chimera-gateway"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
        logger: logger)
}
