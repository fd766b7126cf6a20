import ChimeraCluster
import ChimeraWire
import Foundation
import Hummingbird

/// JSON shapes of the Python Chimera's API (kept byte-compatible) and the gateway's additions.
struct FitOK: ResponseEncodable { let fit = "ok" }

/// An error answered in the Python Chimera's shape:
/// `{"message": …, "details": {"errorCode": <status>, "errorMessage": "<Kind>"}}`.
struct GatewayError: Error, HTTPResponseError {
    let status: HTTPResponse.Status
    let kind: String
    let message: String

    init(_ status: HTTPResponse.Status, _ kind: String, _ message: String) {
        self.status = status
        self.kind = kind
        self.message = message
    }

    struct Body: Encodable {
        struct Details: Encodable {
            let errorCode: Int
            let errorMessage: String
        }
        let message: String
        let details: Details
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        GatewayMetrics.countError(kind: kind, status: status.code)
        let body = Body(message: message, details: .init(errorCode: status.code, errorMessage: kind))
        let data = try JSONEncoder().encode(body)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Maps what the master (or the bridge) said to an HTTP status.
    static func from(_ error: any Error) -> GatewayError {
        if let error = error as? GatewayError { return error }
        guard let client = error as? MasterClientError else {
            return GatewayError(.internalServerError, "InternalError", "\(error)")
        }
        switch client {
        case .timedOut:
            return GatewayError(.gatewayTimeout, "MasterTimeout", client.description)
        case .unreachable:
            return GatewayError(.serviceUnavailable, "MasterUnavailable", client.description)
        case .curveRefused:
            return GatewayError(.serviceUnavailable, "CurveKeyRefused", client.description)
        case .unexpected:
            return GatewayError(.badGateway, "BadGateway", client.description)
        case .refused(let code, let message):
            switch code {
            case .notFitted: return GatewayError(.conflict, "NotFittedError", message)
            case .unknownColumn: return GatewayError(.badRequest, "UnknownColumn", message)
            case .wrongShape, .badRequest, .nonFinite, .tooLarge:
                return GatewayError(.badRequest, "ValidationError", message)
            case .busy: return GatewayError(.conflict, "Busy", message)
            case .wrongMode: return GatewayError(.conflict, "WrongMode", message)
            case .noWorkers: return GatewayError(.serviceUnavailable, "NoWorkers", message)
            case .diverged: return GatewayError(.unprocessableContent, "Diverged", message)
            case .limit: return GatewayError(.tooManyRequests, "LimitReached", message)
            case .forbidden, .unauthorized: return GatewayError(.forbidden, "Forbidden", message)
            case .unknownJob: return GatewayError(.notFound, "UnknownJob", message)
            default: return GatewayError(.badGateway, "MasterError", message)
            }
        }
    }
}
