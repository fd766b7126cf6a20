import ChimeraCluster
import Foundation
import Hummingbird
import Testing

@testable import ChimeraGateway
@testable import ChimeraPredictBody

@Suite("Predict body reader")
struct PredictBodyTests {
    func parse(_ text: String) throws(GatewayError) -> PredictBody { try PredictBody.parse(ByteBuffer(string: text)) }

    @Test("numbers are read exactly as Double(String) reads them")
    func numbers() throws {
        var generator = SystemRandomNumberGenerator()
        var texts = [
            "0", "-0", "1", "-1.5", "0.1", "3.14159", "1e5", "1E-5", "2.5e+3", "123456789012345678",
            "0.30000000000000004",
            "1.7976931348623157e308", "5e-324", "9007199254740993", "-0.00001", "12345.67890", "1e23",
            "8.98846567431158e307",
        ]
        for _ in 0..<2_000 {
            let value = Double(bitPattern: generator.next() & 0x7FEF_FFFF_FFFF_FFFF) * (Bool.random() ? 1 : -1)
            texts.append("\(value)")
            texts.append(String(format: "%.5f", Double(Int.random(in: -1_000_000...1_000_000)) / 997))
        }
        for text in texts {
            let read = Array(text.utf8).withUnsafeBytes { raw -> Double? in
                var reader = JSONReader(raw)
                return try? reader.number()
            }
            #expect(read?.bitPattern == Double(text)!.bitPattern, "\(text)")
        }
        let body = try parse("{\"X_pred_columns\":[\"a\",\"b\"],\"X_pred_rows\":[[0.1,-2.5e-3]]}")
        #expect(body.values == [Float(0.1), Float(-2.5e-3)])
    }

    @Test("rows read eight digits at a time round exactly as Float(Double(String)) does")
    func fastRows() throws {
        var random = SystemRandomNumberGenerator()
        var texts = [
            "0", "-0", "0.0", "7", "12345678", "123456789", "1234567890123456789", "12345678901234567890", "0.000001",
            "99999999.99999999", "-1.00000000000000000001", "4294967296.5", "16777217", "16777216.5", "0.1", "1e3",
        ]
        for _ in 0..<20_000 {
            let integer = Int.random(in: 0...Int(pow(10.0, Double(Int.random(in: 0...10)))), using: &random)
            let digits = Int.random(in: 0...12, using: &random)
            var text = (Bool.random(using: &random) ? "-" : "") + String(integer)
            if digits > 0 {
                text += "." + String((0..<digits).map { _ in Character(String(Int.random(in: 0...9, using: &random))) })
            }
            texts.append(text)
        }
        // What Python's json writes for doubles (17 significant digits, e-05 below 1e-4), over many
        // magnitudes; exponent spellings; decimals right at the midpoint between two floats.
        for _ in 0..<10_000 {
            let magnitude = pow(10.0, Double(Int.random(in: -30...30, using: &random)))
            texts.append("\(Double.random(in: -1...1, using: &random) * magnitude)")
            let single = Float.random(in: -1_000...1_000, using: &random)
            let midpoint = (Double(single) + Double(single.nextUp)) / 2
            texts.append(String(format: "%.17g", midpoint))
            texts.append(String(format: "%.9g", midpoint))
        }
        texts += [
            "1E3", "2.5e+3", "-7.25e-03", "1e0", "1e-22", "1e22", "1e23", "1.5e-23", "4e0001", "0.0012345678901234567",
            "123.456e-2", "3.4028234e38", "-0.0e5", "9007199254740993.5",
        ]
        // Separators as Python's json writes them (", "), compact ones, and a row ending at the buffer's end.
        let body =
            "{\"X_pred_columns\":[\"a\"],\"X_pred_rows\":["
            + texts.map { "[\($0)]" }.joined(separator: Bool.random() ? ", " : ",") + "]}"
        let parsed = try parse(body)
        #expect(parsed.rows == texts.count)
        for (text, value) in zip(texts, parsed.values) {
            #expect(value.bitPattern == Float(Double(text)!).bitPattern, "\(text)")
        }
        // The same numbers seven to a row (large enough to be read in two halves).
        let width = 7
        let usable = texts.count / width * width
        let columns = (0..<width).map { "\"c\($0)\"" }.joined(separator: ", ")
        let rows = stride(from: 0, to: usable, by: width).map {
            "[" + texts[$0..<$0 + width].joined(separator: ", ") + "]"
        }
        let wide = try parse(
            "{\"X_pred_columns\": [\(columns)], \"X_pred_rows\": [" + rows.joined(separator: ", ") + "]}")
        #expect(wide.values.count == usable)
        for (text, value) in zip(texts, wide.values) where value.bitPattern != Float(Double(text)!).bitPattern {
            Issue.record("\(text) read as \(value)")
        }
    }

    @Test("any run of spaces after a comma, and numbers of every length at every offset, read as Float(Double(String))")
    func spacedRows() throws {
        var random = SystemRandomNumberGenerator()
        // Lengths 1…21 (the longest the row kernel converts) and beyond, each after 0…70 spaces, so
        // numbers start at every offset of the kernel's 64-byte windows and cross their ends.
        var texts: [String] = []
        for length in 1...24 {
            for _ in 0..<40 {
                let digits = String((0..<length).map { _ in Character(String(Int.random(in: 0...9, using: &random))) })
                let cut = Int.random(in: 0...length, using: &random)
                let integer = digits.prefix(cut).drop { $0 == "0" }
                let fraction = digits.dropFirst(cut)
                let text = (integer.isEmpty ? "0" : String(integer)) + (fraction.isEmpty ? "" : "." + fraction)
                texts.append((Bool.random(using: &random) ? "-" : "") + text)
            }
        }
        var row = ""
        for (index, text) in texts.enumerated() {
            if index > 0 { row += "," + String(repeating: " ", count: Int.random(in: 0...70, using: &random)) }
            row += text
        }
        let parsed = try parse(
            "{\"X_pred_columns\": [\"a\"], \"X_pred_rows\": [" + texts.map { "[\($0)]" }.joined(separator: ", ") + "]}")
        let wide = try parse(
            "{\"X_pred_columns\": [" + texts.indices.map { "\"c\($0)\"" }.joined(separator: ",")
                + "], \"X_pred_rows\": [[" + row + "]]}")
        for body in [parsed, wide] {
            #expect(body.values.count == texts.count)
            for (text, value) in zip(texts, body.values) where value.bitPattern != Float(Double(text)!).bitPattern {
                Issue.record("\(text) read as \(value)")
            }
        }
        // Sign and dot misplaced inside a long row: refused, as the general reader refuses them.
        let good = (0..<30).map { "-\($0).125" }.joined(separator: ",  ")
        for bad in ["1-2]", "--1]", "1.2-3]", "-.5]", "-]", "1..2]", "- 1]"] {
            let text = "{\"X_pred_columns\":[\"a\"],\"X_pred_rows\":[[" + good + ", " + bad + "]]}"
            #expect("\(bad)") { try parse(text) } throws: { error in (error as? GatewayError)?.kind == "InvalidJSON" }
        }
    }

    @Test("the parse helper runs both halves exactly once and their writes are seen, from many threads at once")
    func parseHelper() {
        final class Box: @unchecked Sendable { var value = 0 }
        let failures = Box()
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 6) { thread in
            for i in 1...400 {
                let theirs = Box()
                var mine = 0
                // Early wake-ups with and without a job following, as the gateway makes them.
                if i % 7 == 0 { ParseHelper.shared.wakeEarly() }
                ParseHelper.shared.run({ theirs.value += thread * 1_000 + i }, alongside: { mine += i })
                if theirs.value != thread * 1_000 + i || mine != i {
                    lock.lock()
                    failures.value += 1
                    lock.unlock()
                }
            }
        }
        #expect(failures.value == 0)
    }

    @Test("large bodies, read in two halves, give a sequential read's rows and errors")
    func largeBodies() throws {
        let row = "[" + (0..<21).map { "\($0).25" }.joined(separator: ", ") + "]"
        let rows = Array(repeating: row, count: 2_000)
        let good = try parse(
            "{\"X_pred_columns\":[" + (0..<21).map { "\"c\($0)\"" }.joined(separator: ",") + "],\"X_pred_rows\":["
                + rows.joined(separator: ", ") + "]}")
        #expect(good.rows == 2_000 && good.values.count == 42_000 && good.values[41_999] == 20.25)
        // A bad number late in the array (in the second half) is still found, at its byte offset.
        var broken = rows
        broken[1_800] = "[1, 2, x]"
        #expect(throws: GatewayError.self) {
            try parse("{\"X_pred_columns\":[\"a\"],\"X_pred_rows\":[" + broken.joined(separator: ",") + "]}")
        }
        // A small array followed by a large key whose strings look like rows: the split is ignored.
        let decoy = "\"" + String(repeating: "],[", count: 30_000) + "\""
        let small = try parse("{\"X_pred_columns\":[\"a\"],\"X_pred_rows\":[[1],[2]],\"note\":[" + decoy + "]}")
        #expect(small.values == [1, 2])
        // A ragged row in the second half is reported like any other.
        var ragged = rows
        ragged[1_999] = "[1]"
        #expect {
            try parse(
                "{\"X_pred_columns\":[" + (0..<21).map { "\"c\($0)\"" }.joined(separator: ",") + "],\"X_pred_rows\":["
                    + ragged.joined(separator: ",") + "]}")
        } throws: { error in
            (error as? GatewayError)?.message == "row 1999 has 1 values, X_pred_columns has 21"
        }
    }

    @Test(
        "cells as the Python Chimera takes them: true/false are 1/0, numeric strings are numbers; others are named errors"
    )
    func pythonCells() throws {
        let body = try parse(
            #"{"X_pred_columns":["a","b","c"],"X_pred_rows":[[true, "1.5", 2], [false, " -3e2 ", 0.25]]}"#)
        #expect(body.values == [1, 1.5, 2, 0, -300, 0.25])
        #expect { try parse(#"{"X_pred_columns":["a","b"],"X_pred_rows":[[1, "abc"]]}"#) } throws: { error in
            (error as? GatewayError)?.message.contains("\"abc\" is not a number") == true
        }
        #expect { try parse(#"{"X_pred_columns":["a","b"],"X_pred_rows":[[null, 1]]}"#) } throws: { error in
            (error as? GatewayError)?.message.contains("null is not a number") == true
        }
        #expect(throws: GatewayError.self) { try parse(#"{"X_pred_columns":["a"],"X_pred_rows":[["nan"]]}"#) }
        // In a body large enough to be read in two halves, the second half's strings read the same.
        let row =
            "["
            + (0..<21).map { $0 % 3 == 0 ? "\"\($0).5\"" : ($0 % 3 == 1 ? "true" : "\($0)") }.joined(separator: ", ")
            + "]"
        let large = try parse(
            "{\"X_pred_columns\":[" + (0..<21).map { "\"c\($0)\"" }.joined(separator: ",") + "],\"X_pred_rows\":["
                + Array(repeating: row, count: 3_000).joined(separator: ",") + "]}")
        let expected: [Float] = (0..<21).map { (column: Int) -> Float in
            switch column % 3 {
            case 0: Float(column) + 0.5
            case 1: 1
            default: Float(column)
            }
        }
        #expect(large.rows == 3_000 && large.values == Array((0..<3_000).map { _ in expected }.joined()))
    }

    @Test("predictions are written as short JSON numbers that read back to the same value")
    func writtenNumbers() {
        #expect(jsonNumber(1) == "1.0" && jsonNumber(0) == "0.0" && jsonNumber(-3) == "-3.0")
        #expect(jsonNumber(-0.0) == "-0.0")
        #expect(jsonNumber(Double(Float(0.1))) == "0.1")
        #expect(jsonNumber(0.1) == "0.1")
        #expect(jsonNumber(.nan) == "null" && jsonNumber(.infinity) == "null")
        #expect(jsonNumber(1e20) == "1e+20")
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let single = Float.random(in: -1_000...1_000, using: &random)
            #expect(Float(Double(jsonNumber(Double(single)))!) == single)
            let double = Double.random(in: -1...1, using: &random)
            #expect(Double(jsonNumber(double))! == double)
        }
    }

    @Test("the Python Chimera's body, keys in any order, other keys skipped, escapes decoded")
    func shapes() throws {
        let body = try parse(
            #"{"extra": {"a": [1, {"b": null}], "c": "x\"y"}, "X_pred_rows": [[1, 2.5], [-3e2, 0]], "fan_out": true, "#
                + #""X_pred_columns": ["mean \u00e9", "b\\c"], "probabilities": false}"#)
        #expect(body.columns == ["mean é", "b\\c"])
        #expect(body.values == [1, 2.5, -300, 0] && body.rows == 2)
        #expect(body.fanOut && !body.probabilities)
    }

    @Test("malformed bodies are refused with InvalidJSON or ValidationError, never accepted")
    func malformed() {
        let invalid = [
            "", "{", "[]", "{\"X_pred_columns\":[\"a\"]}", "{\"X_pred_columns\":[\"a\"],\"X_pred_rows\":[[01]]}",
            "{\"X_pred_columns\":[\"a\"],\"X_pred_rows\":[[1,]]}",
            "{\"X_pred_columns\":[\"a\"],\"X_pred_rows\":[[NaN]]}",
            "{\"X_pred_columns\":[\"a\"],\"X_pred_rows\":[[1]]} x", "{\"X_pred_columns\":[\"a],\"X_pred_rows\":[[1]]}",
            "{\"X_pred_columns\":[\"a\"],\"X_pred_rows\":[[.5]]}",
            "{\"X_pred_columns\":[\"a\"],\"X_pred_rows\":[[1.]]}",
            "{\"X_pred_columns\":[\"\\ud800\"],\"X_pred_rows\":[[1]]}", "{\"a\":" + String(repeating: "[", count: 100),
        ]
        for text in invalid {
            #expect(throws: GatewayError.self, "\(text.prefix(60))") { try parse(text) }
        }
        // The same mistakes inside long rows (where the SIMD row kernel reads), each in its own body.
        let good = (0..<30).map { "\($0).5" }.joined(separator: ", ")
        for bad in ["1, ]", "1,, 2]", "1 2]", "-]", "1.5.5]", "01]", "1.]", "+1]", "1x]", "1e]"] {
            let text = "{\"X_pred_columns\":[\"a\"],\"X_pred_rows\":[[" + good + ", " + bad + ", [" + good + "]]}"
            #expect("\(bad)") { try parse(text) } throws: { error in (error as? GatewayError)?.kind == "InvalidJSON" }
        }
        // Whitespace around commas is JSON: read (by the general reader) and counted.
        let columns = (0..<32).map { "\"c\($0)\"" }.joined(separator: ",")
        let spaced = try? parse("{\"X_pred_columns\":[\(columns)],\"X_pred_rows\":[[" + good + " ,\n\t1 , 2]]}")
        #expect(spaced?.values.count == 32 && spaced?.values.last == 2 && spaced?.values[29] == 29.5)
        #expect { try parse("{\"X_pred_columns\":[\"a\",\"b\"],\"X_pred_rows\":[[1,2],[3]]}") } throws: { error in
            (error as? GatewayError)?.message == "row 1 has 1 values, X_pred_columns has 2"
        }
        #expect { try parse("{\"X_pred_columns\":[\"a\"],\"X_pred_rows\":[[1e39]]}") } throws: { error in
            (error as? GatewayError)?.kind == "ValidationError"
        }
    }
}

@Suite("Predict answers with class names")
struct NamedPredictResponseTests {
    @Test("named classes answer their names in y_pred_rows and classes, escaped as JSON strings")
    func names() throws {
        let prediction = MasterClient.Prediction(
            values: [1, 0, 1], classes: [0, 1], probabilities: [0.2, 0.8, 0.9, 0.1, 0.4, 0.6],
            classNames: ["no \"way\"", "yes"])
        let body = predictJSON(prediction, withProbabilities: true)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        #expect(json["y_pred_rows"] as? [String] == ["yes", "no \"way\"", "yes"])
        #expect(json["classes"] as? [String] == ["no \"way\"", "yes"])
        #expect((json["y_proba_rows"] as? [[Double]])?.count == 3)
    }
}
