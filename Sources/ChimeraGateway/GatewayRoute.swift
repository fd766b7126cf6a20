import ChimeraCluster
import Foundation
import Hummingbird

/// One route of the gateway, defined once: what the router serves and what `/openapi.json` documents.
struct GatewayRoute: Sendable {
    typealias Handler = @Sendable (Request, BasicRequestContext) async throws -> Response

    let method: HTTPRequest.Method
    /// The OpenAPI form (`/v1/chimera/jobs/{id}`); the router's is derived from it.
    let path: String
    let summary: String
    /// Component schema of the body (nil: none).
    var requestSchema: String?
    let responseSchema: String
    let errors: [Int]
    var contentType = "application/json"
    let handler: Handler

    /// `/v1/chimera/jobs/:id` for the router.
    var routerPath: String { path.replacing("{", with: ":").replacing("}", with: "") }
}

/// A group of routes that belong together (Hummingbird's controller idiom), with their documentation.
protocol GatewayController {
    var routes: [GatewayRoute] { get }
}

extension Router<BasicRequestContext> {
    /// Serves every route under `base` ("" or `/prefix`; the router takes `/prefix/` and `/prefix` alike).
    func add(_ routes: [GatewayRoute], under base: String = "") {
        for route in routes {
            on(RouterPath(base + route.routerPath), method: route.method, use: route.handler)
        }
    }
}

/// An Encodable answer as JSON (the views' coder: sorted keys, non-finite numbers as strings).
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let data = try ViewCoding.encoder.encode(value)
    return Response(
        status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// The request body, refused with 413 beyond `limit` bytes.
func collect(_ request: Request, limit: Int) async throws -> ByteBuffer {
    do {
        return try await request.body.collect(upTo: limit)
    } catch {
        throw GatewayError(.contentTooLarge, "PayloadTooLarge", "the request body is larger than \(limit) bytes")
    }
}

func jobID(_ context: some RequestContext) throws -> UInt64 {
    guard let text = context.parameters.get("id"), let id = UInt64(text), id > 0 else {
        throw GatewayError(.badRequest, "ValidationError", "the job id must be a positive integer")
    }
    return id
}
