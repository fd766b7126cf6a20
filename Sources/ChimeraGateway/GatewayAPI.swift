import ChimeraCluster
import ChimeraWire
import Foundation
import Hummingbird

/// JSON shapes of the Python Chimera's API (kept byte-compatible) and the gateway's additions.
struct FitOK: ResponseEncodable { let fit = "ok" }

/// Optional hyper-parameters a fit body may carry (all optional; an empty body uses the defaults).
struct FitInput: Decodable {
    var model: String?
    var iterations: Int?
    var eta0: Double?
    var alpha: Double?
    var penalty: String?
    var schedule: String?
    var momentum: Double?
    var staleness: Int?
    var unbounded_staleness: Bool?
    var batch_size: Int?
    var seed: Int?
    var raw_features: Bool?
    var on_divergence: String?
    var max_backoffs: Int?
    // Aggregation (bagging) settings.
    var trees_per_worker: Int?
    var criterion: String?
    var max_depth: Int?
    var min_samples_split: Int?
    var min_samples_leaf: Int?
    var max_features: String?
    var max_leaf_nodes: Int?
    var bootstrap: Bool?

    func apply(to config: inout Chimera_V1_FitConfig) throws(GatewayError) {
        if let model {
            switch model {
            case "linear": config.model = .linearRegression
            case "logistic": config.model = .logisticRegression
            case "softmax": config.model = .softmax
            case "svm": config.model = .linearSvm
            case "tree", "tree_classifier", "decision_tree_classifier": config.model = .decisionTreeClassifier
            case "tree_regressor", "decision_tree_regressor": config.model = .decisionTreeRegressor
            default:
                throw GatewayError(
                    .badRequest, "ValidationError", "model must be linear, logistic, softmax, svm, tree_classifier or tree_regressor")
            }
        }
        for (name, value) in [
            ("trees_per_worker", trees_per_worker), ("max_depth", max_depth), ("min_samples_split", min_samples_split),
            ("min_samples_leaf", min_samples_leaf), ("max_leaf_nodes", max_leaf_nodes),
        ] {
            if let value, value < 0 || value > Int(UInt32.max) {
                throw GatewayError(.badRequest, "ValidationError", "\(name) must be a non-negative integer")
            }
        }
        if let trees_per_worker { config.treesPerWorker = UInt32(trees_per_worker) }
        if let criterion { config.criterion = criterion }
        if let max_depth { config.maxDepth = UInt32(max_depth) }
        if let min_samples_split { config.minSamplesSplit = UInt32(min_samples_split) }
        if let min_samples_leaf { config.minSamplesLeaf = UInt32(min_samples_leaf) }
        if let max_features { config.maxFeatures = max_features }
        if let max_leaf_nodes { config.maxLeafNodes = UInt32(max_leaf_nodes) }
        if let bootstrap { config.noBootstrap = !bootstrap }
        if let iterations {
            guard iterations > 0 else { throw GatewayError(.badRequest, "ValidationError", "iterations must be > 0") }
            config.maxIterations = UInt64(iterations)
        }
        if let eta0 { config.eta0 = eta0 }
        if let alpha { config.alpha = alpha }
        if let momentum { config.momentum = momentum }
        if let penalty {
            switch penalty {
            case "none": config.penalty = .none
            case "l2": config.penalty = .l2
            case "l1": config.penalty = .l1
            case "elasticnet": config.penalty = .elasticNet
            default: throw GatewayError(.badRequest, "ValidationError", "penalty must be none, l2, l1 or elasticnet")
            }
        }
        if let schedule {
            switch schedule {
            case "constant": config.schedule = .learningRateConstant
            case "invscaling": config.schedule = .learningRateInverseScaling
            case "optimal": config.schedule = .learningRateOptimal
            default: throw GatewayError(.badRequest, "ValidationError", "schedule must be constant, invscaling or optimal")
            }
        }
        if let staleness {
            guard staleness >= 0 else { throw GatewayError(.badRequest, "ValidationError", "staleness must be ≥ 0") }
            config.staleness = UInt64(staleness)
        }
        if let unbounded_staleness { config.unboundedStaleness = unbounded_staleness }
        if let batch_size { config.batchSize = UInt64(max(0, batch_size)) }
        if let seed { config.seed = UInt64(max(0, seed)) }
        if let raw_features { config.rawFeatures = raw_features }
        if let on_divergence {
            switch on_divergence {
            case "fail": config.onDivergence = .fail
            case "backoff": config.onDivergence = .backoff
            default: throw GatewayError(.badRequest, "ValidationError", "on_divergence must be fail or backoff")
            }
        }
        if let max_backoffs {
            guard (0...100).contains(max_backoffs) else { throw GatewayError(.badRequest, "ValidationError", "max_backoffs must be 0…100") }
            config.maxBackoffs = UInt32(max_backoffs)
        }
    }
}

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
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
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
            case .wrongShape, .badRequest, .nonFinite, .tooLarge: return GatewayError(.badRequest, "ValidationError", message)
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
