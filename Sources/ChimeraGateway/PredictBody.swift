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

    /// Predict requests between their head's arrival and their answer. A body is split over two
    /// threads only when its request is the only one: with others in flight the second core has
    /// their work to do (splitting under load cost 8 % of throughput with 32 clients, and the
    /// helper's waiting and spinning 7–13 % with 8 when the split went by bodies being read alone).
    private static let inFlight = Atomic<Int>(0)

    /// Counts a predict request in; true when it is the only one.
    static func enter() -> Bool { inFlight.add(1, ordering: .relaxed).oldValue == 0 }

    static func leave() { inFlight.subtract(1, ordering: .relaxed) }

    /// `splitting`: a large rows array may be read in two halves on two threads (the caller decides:
    /// the gateway when its request is the only one in flight).
    static func parse(_ buffer: ByteBuffer, splitting: Bool = true) throws(GatewayError) -> PredictBody {
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
                        (body.x, body.rowLengths) = try reader.floatRows(splitting: splitting)
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
    Response(
        status: .ok, headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(bytes: predictJSON(prediction, withProbabilities: withProbabilities))))
}

/// The body `predictResponse` answers.
func predictJSON(_ prediction: MasterClient.Prediction, withProbabilities: Bool) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(prediction.values.count * 12 + (prediction.probabilities?.count ?? 0) * 12 + 64)
    var texts = NumberTexts()
    func append(_ text: StaticString) { out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)) }
    append("{\"y_pred_rows\":[")
    // Named classes answer their names, as the Python Chimera does for string labels.
    let names = prediction.classNames.map(jsonString)
    for (index, value) in prediction.values.enumerated() {
        if index > 0 { out.append(UInt8(ascii: ",")) }
        if names.isEmpty {
            appendJSONNumber(value, to: &out, texts: &texts)
        } else {
            let position = Int(exactly: value) ?? -1
            out += names.indices.contains(position) ? names[position] : Array("null".utf8)
        }
    }
    append("]")
    if withProbabilities, let probabilities = prediction.probabilities, !prediction.classes.isEmpty {
        let k = prediction.classes.count
        append(",\"classes\":[")
        for (index, label) in prediction.classes.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            if names.count == k {
                out += names[index]
            } else {
                out += Array((label.isFinite ? label.description : "null").utf8)
            }
        }
        append("],\"y_proba_rows\":[")
        for row in 0..<(probabilities.count / k) {
            append(row > 0 ? ",[" : "[")
            for c in 0..<k {
                if c > 0 { out.append(UInt8(ascii: ",")) }
                appendJSONNumber(Double(probabilities[row * k + c]), to: &out, texts: &texts)
            }
            append("]")
        }
        append("]")
    }
    append("}")
    return out
}

/// `text` as a JSON string literal, quotes included.
func jsonString(_ text: String) -> [UInt8] {
    var out: [UInt8] = [UInt8(ascii: "\"")]
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), byte]
        case 0..<0x20: out += Array(String(format: "\\u%04x", byte).utf8)
        default: out.append(byte)
        }
    }
    out.append(UInt8(ascii: "\""))
    return out
}

/// The texts of non-integral numbers already written in one response, by bit pattern. An
/// ensemble's mean probabilities take few distinct values (sums of leaf probabilities), and each
/// `Float.description` builds a String: a 1,000-row bagging answer spent most of its writing there.
struct NumberTexts {
    private var known: [UInt64: Range<Int>] = [:]
    private var bytes: [UInt8] = []
    /// Beyond this many distinct values (a regression's outputs) texts are no longer kept.
    private static let limit = 512

    mutating func append(_ value: Double, to out: inout [UInt8]) {
        if let range = known[value.bitPattern] {
            bytes.withUnsafeBufferPointer { out.append(contentsOf: UnsafeBufferPointer(rebasing: $0[range])) }
            return
        }
        var text = Float(exactly: value).map(\.description) ?? value.description
        text.withUTF8 { utf8 in
            out.append(contentsOf: utf8)
            if known.count < Self.limit {
                known[value.bitPattern] = bytes.count..<(bytes.count + utf8.count)
                bytes.append(contentsOf: utf8)
            }
        }
    }
}

/// A prediction as a JSON number, as Python's json writes it where it can: integral values as "1.0";
/// values that are exactly float32 (the master's probabilities and scores) in their shortest float32
/// form, which reads back as the same float32 (and was a third of a 1,000-row predict's time written
/// as 17-digit doubles); non-finite values as null. Bytes are appended (a String per number cost
/// 40 % more).
func appendJSONNumber(_ value: Double, to out: inout [UInt8], texts: inout NumberTexts) {
    guard value.isFinite else {
        out.append(contentsOf: "null".utf8)
        return
    }
    if value == value.rounded(), abs(value) < 1e15, !(value == 0 && value.sign == .minus) {
        var magnitude = UInt64(abs(value))
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var digits: (UInt64, UInt64) = (0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[15 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[(16 - count)...]))
        }
        out.append(UInt8(ascii: "."))
        out.append(UInt8(ascii: "0"))
        return
    }
    texts.append(value, to: &out)
}

func jsonNumber(_ value: Double) -> String {
    var out: [UInt8] = []
    var texts = NumberTexts()
    appendJSONNumber(value, to: &out, texts: &texts)
    return String(decoding: out, as: UTF8.self)
}

/// For `chimera bench json`: reads a predict body the way the gateway does (`split`: two cores for a
/// large body, as when it is the only request being read) and returns its rows and columns.
public func readPredictBody(_ bytes: [UInt8], split: Bool) throws -> (rows: Int, columns: Int) {
    let body = try PredictBody.parse(ByteBuffer(bytes: bytes), splitting: split)
    return (body.rows, body.columns.count)
}
