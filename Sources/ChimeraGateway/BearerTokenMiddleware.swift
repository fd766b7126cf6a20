import Foundation
import Hummingbird

/// Requires `Authorization: Bearer <token>` on every route except `open` ones; answers 401 in the
/// Python Chimera's error shape otherwise. The comparison takes the same time whatever the input.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]
    let open: Set<String>

    init(token: String, open: Set<String>) {
        self.token = Array(token.utf8)
        self.open = open
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if open.contains(request.uri.path) { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        guard header.hasPrefix(prefix), constantTimeEqual(Array(header.utf8.dropFirst(prefix.utf8.count)), token) else {
            throw GatewayError(.unauthorized, "Unauthorized", "missing or wrong bearer token")
        }
        return try await next(request, context)
    }

    private func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
