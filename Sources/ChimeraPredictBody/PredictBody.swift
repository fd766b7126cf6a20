public import ChimeraWire
import Synchronization

/// The predict request body, read by a strict single-pass JSON reader straight into float32 rows:
/// `{"X_pred_columns": [...], "X_pred_rows": [[...], ...]}` plus the optional `"probabilities"` and
/// `"fan_out"` booleans; any other key is skipped. Kept because it beats Foundation's JSONDecoder
/// and JSONSerialization by far (`chimera bench json`; Benchmarks/RESULTS.md).
///
/// Unchecked Sendable: the tensor's memory is written only while parsing, then read by the bridge
/// thread the body moves to.
public struct PredictBody: @unchecked Sendable {
    public var columns: [String] = []
    /// Row-major values: float32 [rows, columns] once parsed.
    public var x = Tensor.float32([])
    public var rowLengths: [Int] = []
    public var probabilities = false
    public var fanOut = false

    public var rows: Int { rowLengths.count }
    public var values: [Float] { x.floats() }

    /// Predict requests between their head's arrival and their answer. A body is split over two
    /// threads only when its request is the only one: with others in flight the second core has
    /// their work to do (splitting under load cost throughput: Benchmarks/RESULTS.md, "Design
    /// measurements").
    private static let inFlight = Atomic<Int>(0)

    /// Counts a predict request in; true when it is the only one.
    public static func enter() -> Bool { inFlight.add(1, ordering: .relaxed).oldValue == 0 }

    public static func leave() { inFlight.subtract(1, ordering: .relaxed) }

    /// `splitting`: a large rows array may be read in two halves on two threads (the caller decides:
    /// the gateway when its request is the only one in flight).
    public static func parse(_ raw: UnsafeRawBufferPointer, splitting: Bool = true) throws(PredictBodyError)
        -> PredictBody
    {
        var body = PredictBody()
        var sawColumns = false
        var sawRows = false
        let result: Result<Void, JSONReader.Failure> = {
            var reader = JSONReader(raw)
            do throws(JSONReader.Failure) {
                try reader.object { key, reader throws(JSONReader.Failure) in
                    switch key {
                    case "X_pred_columns":
                        sawColumns = true
                        try reader.array { reader throws(JSONReader.Failure) in body.columns.append(try reader.string())
                        }
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
        }()
        let shape = "expected {\"X_pred_columns\": [...], \"X_pred_rows\": [[...]]}"
        if case .failure(let failure) = result { throw PredictBodyError(.invalidJSON, "\(shape): \(failure.message)") }
        guard sawColumns && sawRows else {
            throw PredictBodyError(.invalidJSON, "\(shape): missing \(sawColumns ? "X_pred_rows" : "X_pred_columns")")
        }
        let width = body.columns.count
        guard width > 0 else { throw PredictBodyError(.validation, "X_pred_columns is empty") }
        if let row = body.rowLengths.firstIndex(where: { $0 != width }) {
            throw PredictBodyError(
                .validation, "row \(row) has \(body.rowLengths[row]) values, X_pred_columns has \(width)")
        }
        guard body.x.firstNonFiniteIndex == nil else {
            throw PredictBodyError(.validation, "X_pred_rows holds a value that is not a finite float32")
        }
        body.x = body.x.reshaped([body.rows, width])
        return body
    }
}

/// Why a predict body was refused: malformed JSON, or well-formed but unusable rows.
public struct PredictBodyError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        case invalidJSON = "InvalidJSON"
        case validation = "ValidationError"
    }
    public let kind: Kind
    public let message: String
    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { message }
}

/// For `chimera bench json` and the fuzzer: reads a predict body the way the gateway does (`split`:
/// two cores for a large body, as when it is the only request being read); its rows and columns.
public func readPredictBody(_ bytes: [UInt8], split: Bool) throws -> (rows: Int, columns: Int) {
    let body = try bytes.withUnsafeBytes { raw throws(PredictBodyError) in try PredictBody.parse(raw, splitting: split)
    }
    return (body.rows, body.columns.count)
}
