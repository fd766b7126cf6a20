import ChimeraCluster
import ChimeraWire
import Foundation
import Hummingbird
import Synchronization

/// The predict request body, read by a strict single-pass JSON reader straight into float32 rows:
/// `{"X_pred_columns": [...], "X_pred_rows": [[...], ...]}` plus the optional `"probabilities"` and
/// `"fan_out"` booleans; any other key is skipped. (Foundation's decoders spent ~12 ms on a
/// 1,000 × 21 body; this takes a fraction of a millisecond.)
///
/// Unchecked Sendable: the tensor's memory is written only while parsing, then read by the bridge
/// thread the body moves to.
struct PredictBody: @unchecked Sendable {
    var columns: [String] = []
    /// Row-major values: float32 [rows, columns] once parsed.
    var x = Tensor.float32([])
    var rowLengths: [Int] = []
    var probabilities = false
    var fanOut = false

    var rows: Int { rowLengths.count }
    var values: [Float] { x.floats() }

    /// Bodies being read right now: a large one is split over two cores only when it is the only one
    /// (under load the other core is busy with another body, and splitting cost 8 % of throughput
    /// with 32 clients).
    private static let reading = Atomic<Int>(0)

    static func parse(_ buffer: ByteBuffer, splitting: Bool = true) throws(GatewayError) -> PredictBody {
        let alone = reading.add(1, ordering: .relaxed).oldValue == 0 && splitting
        defer { reading.subtract(1, ordering: .relaxed) }
        var body = PredictBody()
        var sawColumns = false
        var sawRows = false
        let result: Result<Void, JSONReader.Failure> = buffer.readableBytesView.withUnsafeBytes { raw in
            var reader = JSONReader(raw)
            do throws(JSONReader.Failure) {
                try reader.object { key, reader throws(JSONReader.Failure) in
                    switch key {
                    case "X_pred_columns":
                        sawColumns = true
                        try reader.array { reader throws(JSONReader.Failure) in body.columns.append(try reader.string()) }
                    case "X_pred_rows":
                        sawRows = true
                        (body.x, body.rowLengths) = try reader.floatRows(splitting: alone)
                    case "probabilities": body.probabilities = try reader.bool()
                    case "fan_out": body.fanOut = try reader.bool()
                    default: try reader.skipValue()
                    }
                }
                try reader.end()
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        let shape = "expected {\"X_pred_columns\": [...], \"X_pred_rows\": [[...]]}"
        if case .failure(let failure) = result { throw GatewayError(.badRequest, "InvalidJSON", "\(shape): \(failure.message)") }
        guard sawColumns && sawRows else {
            throw GatewayError(.badRequest, "InvalidJSON", "\(shape): missing \(sawColumns ? "X_pred_rows" : "X_pred_columns")")
        }
        let width = body.columns.count
        guard width > 0 else { throw GatewayError(.badRequest, "ValidationError", "X_pred_columns is empty") }
        if let row = body.rowLengths.firstIndex(where: { $0 != width }) {
            throw GatewayError(
                .badRequest, "ValidationError", "row \(row) has \(body.rowLengths[row]) values, X_pred_columns has \(width)")
        }
        guard body.x.firstNonFiniteIndex == nil else {
            throw GatewayError(.badRequest, "ValidationError", "X_pred_rows holds a value that is not a finite float32")
        }
        body.x = body.x.reshaped([body.rows, width])
        return body
    }
}

/// `{"y_pred_rows": [...]}` as the Python Chimera answers; with probabilities asked for, also
/// `"classes"` and `"y_proba_rows"` (one row of class probabilities per input row). Written directly:
/// non-finite numbers (a diverged model) become null.
func predictResponse(_ prediction: MasterClient.Prediction, withProbabilities: Bool) -> Response {
    var text = "{\"y_pred_rows\":["
    text.reserveCapacity(prediction.values.count * 20 + 64)
    func append(_ value: Double) { text += jsonNumber(value) }
    for (index, value) in prediction.values.enumerated() {
        if index > 0 { text += "," }
        append(value)
    }
    text += "]"
    if withProbabilities, let probabilities = prediction.probabilities, !prediction.classes.isEmpty {
        let k = prediction.classes.count
        text += ",\"classes\":["
        text += prediction.classes.map { $0.isFinite ? $0.description : "null" }.joined(separator: ",")
        text += "],\"y_proba_rows\":["
        for row in 0..<(probabilities.count / k) {
            text += row > 0 ? ",[" : "["
            for c in 0..<k {
                if c > 0 { text += "," }
                append(Double(probabilities[row * k + c]))
            }
            text += "]"
        }
        text += "]"
    }
    text += "}"
    return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
}


/// A prediction as a JSON number, as Python's json writes it where it can: integral values as "1.0";
/// values that are exactly float32 (the master's probabilities and scores) in their shortest float32
/// form, which reads back as the same float32 (and was a third of a 1,000-row predict's time written
/// as 17-digit doubles); non-finite values as null.
func jsonNumber(_ value: Double) -> String {
    guard value.isFinite else { return "null" }
    if value == value.rounded(), abs(value) < 1e15, !(value == 0 && value.sign == .minus) {
        return String(Int64(value)) + ".0"
    }
    if let single = Float(exactly: value) { return single.description }
    return value.description
}

/// For `chimera bench json`: reads a predict body the way the gateway does (`split`: two cores for a
/// large body, as when it is the only request being read) and returns its rows and columns.
public func readPredictBody(_ bytes: [UInt8], split: Bool) throws -> (rows: Int, columns: Int) {
    let body = try PredictBody.parse(ByteBuffer(bytes: bytes), splitting: split)
    return (body.rows, body.columns.count)
}
