import ChimeraML

/// RFC 4180 records: fields separated by commas, records by LF or CRLF; a field in double quotes may
/// hold commas, line breaks and `""` (one quote). Lenient where spreadsheets are: spaces around a quoted
/// field are ignored, and lines of only spaces are skipped.
enum CSVRecords {
    private static let comma = UInt8(ascii: ",")
    private static let quote = UInt8(ascii: "\"")
    private static let newline = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")

    private static func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    /// Calls `body` with each record's row (the line it starts on, 1-based, as a spreadsheet numbers
    /// rows) and its fields, unquoted.
    static func forEach(
        _ bytes: UnsafeBufferPointer<UInt8>, from start: Int, file: String, _ body: (Int, [String]) throws -> Void
    ) throws {
        let count = bytes.count
        var index = start
        var line = 1
        var fields: [String] = []
        var quoted: [UInt8] = []
        while index < count {
            let row = line
            fields.removeAll(keepingCapacity: true)
            var anyQuoted = false
            var endOfRecord = false
            while !endOfRecord {
                var cursor = index
                while cursor < count, isBlank(bytes[cursor]) { cursor += 1 }
                if cursor < count, bytes[cursor] == quote {
                    anyQuoted = true
                    quoted.removeAll(keepingCapacity: true)
                    cursor += 1
                    while true {
                        guard cursor < count else {
                            throw DataError(
                                file: file, row: row,
                                "has a quoted field that is never closed (a \\\" without its closing \\\")")
                        }
                        let byte = bytes[cursor]
                        if byte == quote {
                            if cursor + 1 < count, bytes[cursor + 1] == quote {
                                quoted.append(quote)
                                cursor += 2
                                continue
                            }
                            cursor += 1
                            break
                        }
                        if byte == newline { line += 1 }
                        quoted.append(byte)
                        cursor += 1
                    }
                    while cursor < count, isBlank(bytes[cursor]) { cursor += 1 }
                    fields.append(String(decoding: quoted, as: UTF8.self))
                    if cursor >= count {
                        endOfRecord = true
                        index = count
                    } else if bytes[cursor] == comma {
                        index = cursor + 1
                    } else if bytes[cursor] == newline {
                        line += 1
                        index = cursor + 1
                        endOfRecord = true
                    } else if bytes[cursor] == carriageReturn, cursor + 1 < count, bytes[cursor + 1] == newline {
                        line += 1
                        index = cursor + 2
                        endOfRecord = true
                    } else {
                        throw DataError(
                            file: file, row: row,
                            "has text after a closing quote (a quote inside a quoted field is written \\\"\\\")")
                    }
                } else {
                    var end = index
                    while end < count, bytes[end] != comma, bytes[end] != newline { end += 1 }
                    var fieldEnd = end
                    if fieldEnd > index, bytes[fieldEnd - 1] == carriageReturn, end == count || bytes[end] == newline {
                        fieldEnd -= 1
                    }
                    fields.append(
                        String(decoding: UnsafeBufferPointer(rebasing: bytes[index..<fieldEnd]), as: UTF8.self))
                    if end >= count {
                        endOfRecord = true
                        index = count
                    } else if bytes[end] == comma {
                        index = end + 1
                    } else {
                        line += 1
                        index = end + 1
                        endOfRecord = true
                    }
                }
            }
            if !anyQuoted, fields.count == 1, fields[0].utf8.allSatisfy(isBlank) { continue }
            try body(row, fields)
        }
    }
}
