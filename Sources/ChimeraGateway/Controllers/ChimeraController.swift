import ChimeraCluster
import ChimeraPredictBody
import ChimeraWire
import Foundation
import Hummingbird

/// The Python Chimera's two endpoint pairs, kept byte-compatible: a blocking fit (`{"fit": "ok"}`)
/// and predictions, for the parameter server and for bagging; each asks the master for its kind of job.
struct ChimeraController: GatewayController {
    let bridge: MasterBridge
    let limit: Int
    let fitTimeout: Int32
    let requestTimeout: Int32

    var routes: [GatewayRoute] {
        [(FitMode.parameterServer, Chimera_V1_JobKind.parameterServer), (.aggregation, .aggregation)].flatMap {
            mode, kind in
            [fit(mode, kind), predict(mode, kind)]
        }
    }

    func fit(_ mode: FitMode, _ kind: Chimera_V1_JobKind) -> GatewayRoute {
        let (bridge, limit, fitTimeout, requestTimeout) = (bridge, limit, fitTimeout, requestTimeout)
        return GatewayRoute(
            method: .post, path: "/v1/chimera/\(mode.rawValue)/fit",
            summary: mode == .aggregation
                ? "Fit bagged decision trees: each worker fits trees on bootstraps of its shard (blocks until done)"
                : "Fit on the cluster (blocks until done); the body is optional",
            requestSchema: "FitInput", responseSchema: "FitOK", errors: [400, 401, 409, 413, 503, 504]
        ) { request, _ in
            let request = try fitRequest(
                try fitSettings(try await collect(request, limit: limit)), kind: kind, asynchronous: false)
            do {
                let state = try await bridge.perform { client in
                    // A fit may rightly take an hour, so first make sure a master answers at all (503 if not).
                    do {
                        _ = try client.status(timeoutMilliseconds: requestTimeout)
                    } catch MasterClientError.timedOut {
                        throw GatewayError(
                            .serviceUnavailable, "MasterUnavailable", "no master answered at \(client.endpoint)")
                    }
                    return try client.fit(request, timeoutMilliseconds: fitTimeout).state
                }
                guard state == .succeeded else {
                    throw GatewayError(.internalServerError, "FitFailed", "the fit ended \(state)")
                }
                return try json(FitOK())
            } catch {
                throw GatewayError.from(error)
            }
        }
    }

    func predict(_ mode: FitMode, _ kind: Chimera_V1_JobKind) -> GatewayRoute {
        let (bridge, limit, requestTimeout) = (bridge, limit, requestTimeout)
        return GatewayRoute(
            method: .post, path: "/v1/chimera/\(mode.rawValue)/predict",
            summary: mode == .aggregation
                ? "Predict with the ensemble: mean P(class 1) for binary classification, labels for more classes, values for regression"
                : "Predict rows with the fitted model",
            requestSchema: "PredictInput", responseSchema: "PredictOutput", errors: [400, 401, 409, 413, 503, 504]
        ) { request, _ in
            // A large body of the only request in flight is split over two threads: start the
            // second one now, while the body is still arriving.
            let alone = PredictBody.enter()
            defer { PredictBody.leave() }
            if alone, let length = request.headers[.contentLength].flatMap({ Int($0) }), length >= JSONReader.splitBytes
            {
                ParseHelper.shared.wakeEarly()
            }
            let input = try PredictBody.parse(try await collect(request, limit: limit), splitting: alone)
            do {
                let prediction = try await bridge.perform(
                    sending: { client in
                        try client.send(
                            MasterClient.predictMessage(
                                columns: input.columns, x: input.x, probabilities: input.probabilities, kind: kind,
                                fanOut: input.fanOut))
                    },
                    receiving: { client in try client.receivePrediction(timeoutMilliseconds: requestTimeout) })
                return predictResponse(prediction, withProbabilities: input.probabilities)
            } catch {
                throw GatewayError.from(error)
            }
        }
    }
}

/// A FitRequest from an optional JSON body of fit settings (an empty body: the defaults), checked
/// against the fit vocabulary for the fit's mode.
func fitRequest(_ settings: FitSettings, kind: Chimera_V1_JobKind, asynchronous: Bool) throws(GatewayError)
    -> Chimera_V1_FitRequest
{
    var fit = Chimera_V1_FitRequest()
    fit.kind = kind
    fit.asynchronous = asynchronous
    do {
        fit.config = try settings.wire(mode: kind == .aggregation ? .aggregation : .parameterServer)
    } catch {
        throw GatewayError(.badRequest, "ValidationError", error.description)
    }
    return fit
}

/// The settings of a fit body; an unknown field, a wrong type or a value out of range is a 400 naming it.
func fitSettings(_ body: ByteBuffer) throws(GatewayError) -> FitSettings {
    do {
        return try FitSettings.parse(json: Data(body.readableBytesView))
    } catch {
        throw GatewayError(.badRequest, error.kind == .malformed ? "InvalidJSON" : "ValidationError", error.description)
    }
}
