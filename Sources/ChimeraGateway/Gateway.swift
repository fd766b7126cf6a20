import ChimeraCluster
import ChimeraPredictBody
import ChimeraWire
public import Foundation
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
    /// A path prefix every route is served under (`/chimera`, behind a reverse proxy); "" for none.
    public var basePath = ""
    /// Where the dashboard finds finished sweeps (`chimera sweep` output folders).
    public var sweepsDirectory: URL?

    public init() {}

    /// `basePath` as given (`chimera/`, `/chimera/`…) in its one form: "" or `/chimera`.
    public static func normalizedBasePath(_ text: String) throws -> String {
        let parts = text.split(separator: "/", omittingEmptySubsequences: true)
        guard
            parts.allSatisfy({ part in
                part != "." && part != ".."
                    && part.allSatisfy { $0.isLetter || $0.isNumber || "-._~".contains($0) }
            })
        else {
            throw GatewayOptionError(
                "base path \(text.debugDescription): use letters, digits and - . _ ~ between slashes, e.g. /chimera")
        }
        return parts.isEmpty ? "" : "/" + parts.joined(separator: "/")
    }
}

/// A gateway setting that cannot work, named.
public struct GatewayOptionError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Builds the gateway application: the Python Chimera's routes and JSON, bridged to the master.
/// Tests call it with `port = 0`; `onServerRunning` reports the bound port.
public func buildGateway(
    _ options: GatewayOptions, bridge: MasterBridge, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    _ = GatewayMetrics.registry  // bootstraps swift-metrics before any metric is made
    let router = Router()
    let base = options.basePath
    if let token = options.bearerToken {
        // The dashboard page holds no data: it asks for the token and sends it with its requests.
        let open = ["/healthz", "/readyz", "/openapi.json", "/", "/dashboard"].map { base + $0 } + [base]
        router.add(middleware: BearerTokenMiddleware(token: token, open: Set(open)))
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
        DashboardController(
            hub: EventHub(bridge: bridge, requestTimeout: min(requestTimeout, 5_000)), basePath: base,
            sweeps: options.sweepsDirectory),
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
    let document = OpenAPI.json(routes + [openAPIRoute(Data())], basePath: base)
    routes.append(openAPIRoute(document))
    router.add(routes, under: base)

    var logger = Logger(label: "chimera-gateway")
    logger.logLevel = .warning
    return Application(
        router: router,
        server: .http1LargeReads,
        configuration: .init(address: .hostname(options.host, port: options.port), serverName: "chimera-gateway"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
        logger: logger)
}
