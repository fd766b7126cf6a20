import ChimeraCluster
import ChimeraPredictBody
import ChimeraWire
import Foundation
import Hummingbird
import Synchronization

extension PredictBody {
    /// The body of an HTTP request; errors answered as 400 InvalidJSON or ValidationError.
    static func parse(_ buffer: ByteBuffer, splitting: Bool = true) throws(GatewayError) -> PredictBody {
        do {
            return try buffer.readableBytesView.withUnsafeBytes { raw throws(PredictBodyError) in
                try PredictBody.parse(raw, splitting: splitting)
            }
        } catch {
            throw GatewayError(.badRequest, error.kind.rawValue, error.message)
        }
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
    func append(_ text: StaticString) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }
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
/// form, which reads back as the same float32 (17-digit doubles were much slower to write); non-finite
/// values as null. Bytes are appended, not Strings per number (Benchmarks/RESULTS.md).
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
