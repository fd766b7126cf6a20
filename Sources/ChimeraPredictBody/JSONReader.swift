import CKernels
import ChimeraWire
import Foundation

/// A strict JSON reader over bytes (RFC 8259): callbacks for objects and arrays, typed scalars, and a
/// skipper for values nobody asked for. Depth is bounded; every error names its byte offset.
public struct JSONReader {
    struct Failure: Error {
        let message: String
    }

    // Internal (not private) for the digit fast path in JSONReader+Digits.swift.
    let bytes: UnsafeRawBufferPointer
    var position = 0
    var depth = 0
    /// Powers of ten and digit tables, held per reader so the hot loop skips a global's once-check.
    let tables = DecimalTables.shared
    static let maxDepth = 64

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private func fail(_ what: String) -> Failure { Failure(message: "\(what) at byte \(position)") }

    @inline(__always)
    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private mutating func peek() throws(Failure) -> UInt8 {
        skipWhitespace()
        guard position < bytes.count else { throw fail("unexpected end") }
        return bytes[position]
    }

    private mutating func expect(_ byte: UInt8) throws(Failure) {
        guard try peek() == byte else { throw fail("expected '\(Character(UnicodeScalar(byte)))'") }
        position += 1
    }

    mutating func end() throws(Failure) {
        skipWhitespace()
        guard position == bytes.count else { throw fail("trailing characters") }
    }

    /// Opens a container (`{` or `[`): true when it is empty (and already closed).
    private mutating func open(_ opening: UInt8, _ closing: UInt8) throws(Failure) -> Bool {
        try expect(opening)
        depth += 1
        guard depth <= Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth)") }
        return try closes(closing)
    }

    /// Consumes `closing` if it comes next (leaving the container): true when it did.
    private mutating func closes(_ closing: UInt8) throws(Failure) -> Bool {
        guard try peek() == closing else { return false }
        position += 1
        depth -= 1
        return true
    }

    /// After an element: a comma (more follow: false) or the container's end (true).
    private mutating func ends(_ closing: UInt8) throws(Failure) -> Bool {
        if try closes(closing) { return true }
        guard bytes[position] == UInt8(ascii: ",") else {
            throw fail("expected ',' or '\(Character(UnicodeScalar(closing)))'")
        }
        position += 1
        return false
    }

    mutating func object(_ member: (String, inout JSONReader) throws(Failure) -> Void) throws(Failure) {
        if try open(UInt8(ascii: "{"), UInt8(ascii: "}")) { return }
        repeat {
            let key = try string()
            try expect(UInt8(ascii: ":"))
            try member(key, &self)
        } while try !ends(UInt8(ascii: "}"))
    }

    mutating func array(_ element: (inout JSONReader) throws(Failure) -> Void) throws(Failure) {
        if try open(UInt8(ascii: "["), UInt8(ascii: "]")) { return }
        repeat {
            try element(&self)
        } while try !ends(UInt8(ascii: "]"))
    }

    /// An array of arrays of numbers as float32, row-major, with each row's length (the hot loop of a
    /// predict body: values go straight into one growing buffer). A large array is read in two
    /// halves on two cores when `splitting` (JSONReader+Split.swift).
    mutating func floatRows(splitting: Bool = true) throws(Failure) -> (values: Tensor, rowLengths: [Int]) {
        if try open(UInt8(ascii: "["), UInt8(ascii: "]")) { return (.float32([]), []) }
        if splitting, let split = try splitFloatRows() { return split }
        var out = FloatRows(expectedValues: (bytes.count - position) / 4)
        _ = try rows(into: &out, stoppingAt: nil)
        return out.result()
    }

    /// Reads rows (the opening `[` of the array already consumed) until the array's `]` (returns
    /// true), or until a row ends exactly at `stop` (returns false, before the `,` that follows).
    mutating func rows(into out: inout FloatRows, stoppingAt stop: Int?) throws(Failure) -> Bool {
        repeat {
            let rowStart = out.count
            if try !open(UInt8(ascii: "["), UInt8(ascii: "]")) {
                repeat {
                    // Plain decimals go through the SIMD kernel; it stops where this reader takes over.
                    if Self.rowKernel && position >= 16 {
                        if readRowKernel(into: &out), try ends(UInt8(ascii: "]")) { break }
                    }
                    skipWhitespace()
                    let value: Float
                    if let fast = fastFloat() { value = fast } else { value = try cell() }
                    out.append(value)
                    // The usual separator right after the number: no call needed.
                    if position < bytes.count && bytes[position] == UInt8(ascii: ",") {
                        position += 1
                        continue
                    }
                    if try ends(UInt8(ascii: "]")) { break }
                } while true
            }
            out.rowLengths.append(out.count - rowStart)
            if position == stop { return false }
        } while try !ends(UInt8(ascii: "]"))
        return true
    }

    /// Where the `[` of the row after the first row end at or past `offset` is: rows are only
    /// numbers, so inside the array every `]` ends a row. Nil when none follows. (The caller checks
    /// that the offset really was inside the array.)
    func rowStart(after offset: Int) -> (rowEnd: Int, nextRow: Int)? {
        var i = offset
        let count = bytes.count
        while i < count && bytes[i] != UInt8(ascii: "]") { i += 1 }
        guard i < count else { return nil }
        let rowEnd = i + 1
        i = rowEnd
        func spaces() { while i < count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 } }
        spaces()
        guard i < count, bytes[i] == UInt8(ascii: ",") else { return nil }
        i += 1
        spaces()
        guard i < count, bytes[i] == UInt8(ascii: "[") else { return nil }
        return (rowEnd, i)
    }

    /// A reader of the same bytes positioned at `offset`, `depth` containers deep.
    func reader(at offset: Int) -> JSONReader {
        var copy = self
        copy.position = offset
        return copy
    }

    /// A row's cell that the fast paths left: a JSON number, or what the Python Chimera accepts too (its
    /// rows are `str | int | float | bool`, turned into floats by scikit-learn): true and false are 1 and
    /// 0, a string holding a number is that number. Anything else is an error naming it.
    mutating func cell() throws(Failure) -> Float {
        switch try peek() {
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return try bool() ? 1 : 0
        case UInt8(ascii: "\""):
            let start = position
            let text = try string()
            guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite else {
                position = start
                throw fail("\"\(text.prefix(40))\" is not a number")
            }
            return Float(value)
        case UInt8(ascii: "n"):
            throw fail("null is not a number (a missing value?)")
        default:
            return Float(try number())
        }
    }

    mutating func bool() throws(Failure) -> Bool {
        if try literal("true") { return true }
        if try literal("false") { return false }
        throw fail("expected true or false")
    }

    private mutating func literal(_ word: StaticString) throws(Failure) -> Bool {
        _ = try peek()
        let count = word.utf8CodeUnitCount
        guard position + count <= bytes.count else { return false }
        for i in 0..<count where bytes[position + i] != word.utf8Start[i] { return false }
        position += count
        return true
    }

    mutating func skipValue() throws(Failure) {
        switch try peek() {
        case UInt8(ascii: "{"): try object { _, reader throws(Failure) in try reader.skipValue() }
        case UInt8(ascii: "["): try array { reader throws(Failure) in try reader.skipValue() }
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "t"), UInt8(ascii: "f"): _ = try bool()
        case UInt8(ascii: "n"):
            guard try literal("null") else { throw fail("unexpected character") }
        default: _ = try number()
        }
    }

    mutating func string() throws(Failure) -> String {
        try expect(UInt8(ascii: "\""))
        var out: [UInt8] = []
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in a string") }
                return text
            case UInt8(ascii: "\\"):
                guard position < bytes.count else { throw fail("unexpected end") }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard try literal("\\u") else { throw fail("unpaired surrogate") }
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                    out += Array(String(Character(unicode)).utf8)
                default: throw fail("invalid escape")
                }
            case 0..<0x20: throw fail("control character in a string")
            default: out.append(byte)
            }
        }
        throw fail("unterminated string")
    }

    private mutating func hex4() throws(Failure) -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail("unexpected end") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            position += 1
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    /// A JSON number. Exactly rounded: the fast path (≤ 19 digits, mantissa ≤ 2^53, |exponent| ≤ 22) is
    /// one correctly rounded operation on exact operands; anything else goes to strtod.
    @inline(__always)
    mutating func number() throws(Failure) -> Double {
        skipWhitespace()
        let count = bytes.count
        guard position < count, let raw = bytes.baseAddress else { throw fail("unexpected end") }
        let base = raw.assumingMemoryBound(to: UInt8.self)
        let start = position
        var i = position
        let negative = base[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        guard i < count, base[i] &- 48 < 10 else {
            position = i
            throw fail("invalid number")
        }
        // Digits accumulate with wrapping arithmetic; more than 19 of them send the number to strtod,
        // so a wrapped mantissa is never used.
        var mantissa: UInt64 = 0
        let integerStart = i
        if base[i] == UInt8(ascii: "0") {
            i += 1
            if i < count && base[i] &- 48 < 10 {
                position = i
                throw fail("leading zero in a number")
            }
        } else {
            while i < count {
                let d = base[i] &- 48
                if d >= 10 { break }
                mantissa = mantissa &* 10 &+ UInt64(d)
                i += 1
            }
        }
        var digits = i - integerStart
        var exponent = 0
        if i < count && base[i] == UInt8(ascii: ".") {
            i += 1
            let fractionStart = i
            while i < count {
                let d = base[i] &- 48
                if d >= 10 { break }
                mantissa = mantissa &* 10 &+ UInt64(d)
                i += 1
            }
            guard i > fractionStart else {
                position = i
                throw fail("invalid number")
            }
            digits += i - fractionStart
            exponent = fractionStart - i
        }
        if i < count && (base[i] | 0x20) == UInt8(ascii: "e") {
            i += 1
            var negativeExponent = false
            if i < count && (base[i] == UInt8(ascii: "+") || base[i] == UInt8(ascii: "-")) {
                negativeExponent = base[i] == UInt8(ascii: "-")
                i += 1
            }
            guard i < count, base[i] &- 48 < 10 else {
                position = i
                throw fail("invalid number")
            }
            var value = 0
            while i < count {
                let d = base[i] &- 48
                if d >= 10 { break }
                value = min(value * 10 + Int(d), 100_000)
                i += 1
            }
            exponent += negativeExponent ? -value : value
        }
        position = i
        if digits <= 19 && mantissa <= (1 << 53) && abs(exponent) <= 22 {
            let magnitude = Double(mantissa)
            // tens[22 + k] is 10^k, exact for k ≥ 0.
            let value = exponent < 0 ? magnitude / tables.tens[22 - exponent] : magnitude * tables.tens[22 + exponent]
            return negative ? -value : value
        }
        let length = position - start
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { text in
            for i in 0..<length { text[i] = CChar(bitPattern: bytes[start + i]) }
            text[length] = 0
            return strtod(text.baseAddress!, nil)
        }
    }
}
