import ChimeraML
import Foundation

/// A numeric CSV file with a header row: the format of the Python Chimera's X_train.csv / y_train.csv.
struct CSVTable {
    let columns: [String]
    /// Row-major values.
    let values: [Float]
    var rows: Int { columns.isEmpty ? 0 : values.count / columns.count }

    /// Reads and parses `path`. Column names are normalised (trimmed, lower-cased). Row numbers in errors
    /// count the header as row 1, as a spreadsheet shows them.
    static func read(_ path: String) throws -> CSVTable {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError(file: path, "file not found") }
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError(file: path, "cannot be read") }
        return try parse(data, file: path)
    }

    static func parse(_ data: Data, file: String) throws -> CSVTable {
        var values: [Float] = []
        let columns = try forEachRecord(data, file: file) { lineNumber, columns, fields in
            for (index, field) in fields.enumerated() {
                guard let value = parseFloat(field), value.isFinite else {
                    var error = DataError(
                        file: file, row: lineNumber, column: columns[index],
                        "\"\(String(decoding: field, as: UTF8.self))\" is not a finite number")
                    error.cellNotNumeric = true
                    throw error
                }
                values.append(value)
            }
        }
        return CSVTable(columns: columns, values: values)
    }

    /// Reads a file's header and, when it has one column, its cells as text (trimmed, unquoted): class names.
    static func readText(_ path: String) throws -> (columns: [String], cells: [(row: Int, text: String)]) {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError(file: path, "file not found") }
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError(file: path, "cannot be read") }
        var cells: [(row: Int, text: String)] = []
        let columns = try forEachRecord(data, file: path) { lineNumber, columns, fields in
            if fields.count == 1 { cells.append((lineNumber, String(decoding: fields[0], as: UTF8.self).trimmingQuotes)) }
        }
        return (columns, cells)
    }

    /// Calls `body` with every data record's line number, the header's names and the record's fields
    /// (checked to match the header's count); returns the header's names.
    private static func forEachRecord(
        _ data: Data, file: String,
        _ body: (Int, [String], [UnsafeBufferPointer<UInt8>]) throws -> Void
    ) throws -> [String] {
        var columns: [String] = []
        var lineNumber = 0
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            // Spreadsheets save "CSV UTF-8" with a byte-order mark; it is not part of the first name.
            var start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
            while start < bytes.count {
                var end = start
                while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
                lineNumber += 1
                var lineEnd = end
                if lineEnd > start && bytes[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
                let line = UnsafeBufferPointer(rebasing: bytes[start..<lineEnd])
                start = end + 1
                if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { continue }
                let fields = split(line)
                if columns.isEmpty {
                    // An empty header cell is named as pandas names it ("Unnamed: 2"), so a file written
                    // with its index column matches what Python clients send for it.
                    columns = fields.enumerated().map { index, field in
                        let name = normalizedColumnName(String(decoding: field, as: UTF8.self).trimmingQuotes)
                        return name.isEmpty ? "unnamed: \(index)" : name
                    }
                    if let duplicate = Dictionary(grouping: columns, by: { $0 }).first(where: { $0.value.count > 1 }) {
                        throw DataError(file: file, row: 1, column: duplicate.key, "duplicate column name")
                    }
                    continue
                }
                guard fields.count == columns.count else {
                    throw DataError(
                        file: file, row: lineNumber, "has \(fields.count) cells, the header has \(columns.count)")
                }
                try body(lineNumber, columns, fields)
            }
        }
        guard !columns.isEmpty else { throw DataError(file: file, "is empty (no header row)") }
        return columns
    }

    private static func split(_ line: UnsafeBufferPointer<UInt8>) -> [UnsafeBufferPointer<UInt8>] {
        var fields: [UnsafeBufferPointer<UInt8>] = []
        var fieldStart = 0
        for index in 0...line.count where index == line.count || line[index] == UInt8(ascii: ",") {
            fields.append(UnsafeBufferPointer(rebasing: line[fieldStart..<index]))
            fieldStart = index + 1
        }
        return fields
    }

    private static func parseFloat(_ field: UnsafeBufferPointer<UInt8>) -> Float? {
        var text = String(decoding: field, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 { text = String(text.dropFirst().dropLast()) }
        if text == "True" || text == "true" { return 1 }
        if text == "False" || text == "false" { return 0 }
        return Float(text)
    }
}

extension String {
    fileprivate var trimmingQuotes: String {
        let trimmed = trimmingCharacters(in: .whitespaces)
        if trimmed.count >= 2, trimmed.hasPrefix("\""), trimmed.hasSuffix("\"") { return String(trimmed.dropFirst().dropLast()) }
        return trimmed
    }
}

/// Writes a numeric CSV with a header row.
func writeCSV(_ path: String, columns: [String], rows: Int, value: (Int, Int) -> Float) throws {
    var text = columns.joined(separator: ",") + "\n"
    text.reserveCapacity(rows * columns.count * 10)
    for row in 0..<rows {
        for column in 0..<columns.count {
            if column > 0 { text += "," }
            let v = value(row, column)
            text += v == v.rounded() && abs(v) < 1e7 ? String(Int(v)) : String(v)
        }
        text += "\n"
    }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}
