import Hummingbird

/// Answers what the router itself refuses (no such route, a method the route lacks) in the same
/// error shape as every other error, instead of an empty body.
struct ErrorShapeMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            throw GatewayError(.notFound, "NotFound", "no route \(request.method) \(request.uri.path)")
        } catch let error as HTTPError where error.status == .methodNotAllowed {
            throw GatewayError(
                .methodNotAllowed, "MethodNotAllowed", "\(request.uri.path) does not take \(request.method)")
        }
    }
}
