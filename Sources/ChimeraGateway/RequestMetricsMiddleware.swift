import CoreMetrics
import Dispatch
import Hummingbird
import Synchronization

/// Requests, errors and latency by route, method and status, under the names Hummingbird's own
/// MetricsMiddleware uses (`hb_requests`, `hb_request_errors`, `http_server_request_duration`,
/// `http_server_active_requests`).
///
/// Hummingbird's middleware stops its clock after the body is written by wrapping the body in a
/// closure, which turns a one-buffer response into three writes (head, body, end): two send calls
/// and two wake-ups of the client per predict. Here the clock stops when the handler has produced
/// the response (every route answers with one buffer), and the body is left as it is.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    private let cache = RouteMetricsCache()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let start = DispatchTime.now().uptimeNanoseconds
        let active = cache.active(request.method)
        active.increment()
        defer { active.decrement() }
        do {
            let response = try await next(request, context)
            let metrics = cache.route(context.endpointPath ?? "Unknown", request.method, response.status)
            metrics.requests.increment()
            metrics.duration.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start))
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            let metrics = cache.route(context.endpointPath ?? "NotFound", request.method, status)
            metrics.requests.increment()
            metrics.errors.increment()
            throw error
        }
    }
}

/// The metric handles per route, made once (the factory's own lookup takes a lock and builds labels).
private final class RouteMetricsCache: Sendable {
    struct Key: Hashable {
        let route: String
        let method: HTTPRequest.Method
        let status: HTTPResponse.Status
    }

    struct Route: Sendable {
        let requests: Counter
        let errors: Counter
        let duration: Timer

        init(_ key: Key) {
            let labels = [
                ("http.route", key.route), ("http.request.method", key.method.description),
                ("http.response.status_code", key.status.code.description),
            ]
            requests = Counter(label: "hb.requests", dimensions: labels)
            duration = Timer(label: "http.server.request.duration", dimensions: labels, preferredDisplayUnit: .seconds)
            errors = Counter(
                label: "hb.request.errors",
                dimensions: [
                    ("http.route", key.route), ("http.request.method", key.method.description),
                    ("error.type", key.status.code.description),
                ])
        }
    }

    private let routes = Mutex<[Key: Route]>([:])
    private let meters = Mutex<[HTTPRequest.Method: Meter]>([:])

    func route(_ route: String, _ method: HTTPRequest.Method, _ status: HTTPResponse.Status) -> Route {
        let key = Key(route: route, method: method, status: status)
        return routes.withLock { table in
            if let known = table[key] { return known }
            let made = Route(key)
            table[key] = made
            return made
        }
    }

    func active(_ method: HTTPRequest.Method) -> Meter {
        meters.withLock { table in
            if let known = table[method] { return known }
            let made = Meter(
                label: "http.server.active_requests", dimensions: [("http.request.method", method.description)])
            table[method] = made
            return made
        }
    }
}
