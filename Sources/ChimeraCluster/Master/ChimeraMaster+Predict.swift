import ChimeraML
import ChimeraWire
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// Predictions with the fitted linear model (the ensemble's are in ChimeraMaster+Bagging.swift).
extension ChimeraMaster {
    func predict(_ peer: Frame, _ request: Chimera_V1_PredictRequest, _ message: WireMessage) throws {
        let requestID = message.control.requestID
        if let refusal = jobs.modeMismatch(request.kind) {
            return try reply(to: peer, .error(.wrongMode, refusal, requestID: requestID))
        }
        let x: Tensor
        do throws(WireError) {
            x = try message.tensor(named: "x")
            guard x.dtype == .float32, x.shape.count == 2, x.shape[1] == request.columns.count else {
                throw WireError(
                    .wrongTensor, "x must be float32 [rows, \(request.columns.count) columns], is \(x.dtype) \(x.shape)"
                )
            }
        } catch {
            counters.reject(error.code.metricLabel)
            return try reply(to: peer, .error(.wrongShape, error.message, requestID: requestID))
        }
        if options.mode == .aggregation { return try predictEnsemble(peer, request, message, x: x) }
        guard let fitted = model else {
            return try reply(to: peer, .error(.notFitted, "no model yet: fit first", requestID: requestID))
        }
        let data: Dataset
        do {
            let positions = try planColumns(request.columns, for: fitted.featureNames)
            data = x.withUnsafeFloats { values in
                alignedRows(
                    values, width: request.columns.count, positions: positions,
                    featureNames: fitted.featureNames, standardizer: fitted.standardizer)
            }
        } catch {
            return try reply(to: peer, .error(.unknownColumn, error.description, requestID: requestID))
        }
        let objective: Objective
        do {
            objective = try fitted.objective()
        } catch {
            return try reply(to: peer, .error(.internal, "the model cannot predict: \(error)", requestID: requestID))
        }
        let predictions = objective.predict(weights: fitted.weights, data: data)
        var tensors = [NamedTensor("y", .float64(predictions.map(Double.init)))]
        if request.probabilities, let probabilities = objective.probabilities(weights: fitted.weights, data: data) {
            tensors.append(NamedTensor("proba", .float32(probabilities, shape: [data.rows, fitted.classes.count])))
        }
        let reply = Chimera_V1_PredictReply.with {
            $0.classes = fitted.classes.map(Double.init)
            $0.classNames = fitted.classNames ?? []
        }
        try self.reply(to: peer, WireMessage(.predictReply(reply), requestID: requestID, tensors: tensors))
    }

    /// Where the model's features are among `columns`, from the last request's plan when the columns
    /// are the same.
    func planColumns(_ columns: [String], for featureNames: [String]) throws(PredictionError) -> [Int] {
        if let plan = columnPlan, plan.columns == columns, plan.featureNames == featureNames { return plan.positions }
        let positions = try columnPositions(columns, for: featureNames)
        columnPlan = (columns, featureNames, positions)
        return positions
    }
}
