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
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(file: path, "cannot be read")
        }
        return try parse(data, file: path)
    }

    static func parse(_ data: Data, file: String) throws -> CSVTable {
        var values: [Float] = []
        let columns = try forEachRecord(data, file: file) { lineNumber, columns, fields in
            for (index, field) in fields.enumerated() {
                guard let value = parseFloat(field), value.isFinite else {
                    var error = DataError(
                        file: file, row: lineNumber, column: columns[index],
                        "\"\(field)\" is not a finite number")
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
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(file: path, "cannot be read")
        }
        var cells: [(row: Int, text: String)] = []
        let columns = try forEachRecord(data, file: path) { lineNumber, columns, fields in
            if fields.count == 1 { cells.append((lineNumber, fields[0].trimmingCharacters(in: .whitespaces))) }
        }
        return (columns, cells)
    }

    /// Calls `body` with every data record's row number, the header's names and the record's fields
    /// (checked to match the header's count); returns the header's names.
    private static func forEachRecord(
        _ data: Data, file: String, _ body: (Int, [String], [String]) throws -> Void
    ) throws -> [String] {
        var columns: [String] = []
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            // Spreadsheets save "CSV UTF-8" with a byte-order mark; it is not part of the first name.
            let start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
            try CSVRecords.forEach(bytes, from: start, file: file) { row, fields in
                if columns.isEmpty {
                    // An empty header cell is named as pandas names it ("Unnamed: 2"), so a file written
                    // with its index column matches what Python clients send for it.
                    columns = fields.enumerated().map { index, field in
                        let name = normalizedColumnName(field)
                        return name.isEmpty ? "unnamed: \(index)" : name
                    }
                    if let duplicate = Dictionary(grouping: columns, by: { $0 }).first(where: { $0.value.count > 1 }) {
                        throw DataError(file: file, row: 1, column: duplicate.key, "duplicate column name")
                    }
                    return
                }
                guard fields.count == columns.count else {
                    throw DataError(file: file, row: row, "has \(fields.count) cells, the header has \(columns.count)")
                }
                try body(row, columns, fields)
            }
        }
        guard !columns.isEmpty else { throw DataError(file: file, "is empty (no header row)") }
        return columns
    }

    private static func parseFloat(_ field: String) -> Float? {
        let text = field.trimmingCharacters(in: .whitespaces)
        if text == "True" || text == "true" { return 1 }
        if text == "False" || text == "false" { return 0 }
        return Float(text)
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
