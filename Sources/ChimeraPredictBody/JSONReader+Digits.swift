import CKernels

/// The predict body's hot path: one JSON number read straight to float32, eight digits per 64-bit
/// load (SWAR). It covers what clients write — short decimals, Python's 17-digit `repr`, `e-05`
/// exponents — and returns nil (position unchanged) for anything else, which the exact `number()`
/// then reads (and reports errors for). Both give Float(Double(text)) bit for bit.
extension JSONReader {
    /// Bytes the fast path may load from a number's first byte: sign, 7 integer digits, point, 24
    /// fraction digits, a 5-byte exponent and a word's overhang. Closer to the end of the body the
    /// number is copied into a zero-padded buffer (a zero byte ends a number like any non-digit).
    static let fastWindow = 48

    @inline(__always)
    mutating func fastFloat() -> Float? {
        let start = position
        guard let raw = bytes.baseAddress else { return nil }
        let read: (value: Float, length: Int)?
        if start &+ Self.fastWindow <= bytes.count {
            let p = raw.advanced(by: start).assumingMemoryBound(to: UInt8.self)
            // The end is found apart from the digits, so the next number's start does not wait for this
            // one's arithmetic (the CPU overlaps several numbers); a disagreement takes the slow path.
            guard let end = Self.delimiter(p), let fast = Self.decimalFloat(p, tables), fast.length == end else {
                return nil
            }
            position = start &+ end
            return fast.value
        } else {
            let tail = UnsafeRawBufferPointer(rebasing: bytes[start...])
            read = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.fastWindow) { padded in
                _ = padded.initialize(from: repeatElement(0, count: Self.fastWindow))
                _ = UnsafeMutableRawBufferPointer(padded).initializeMemory(as: UInt8.self, from: tail)
                return Self.decimalFloat(UnsafePointer(padded.baseAddress!), tables)
            }
        }
        guard let read else { return nil }
        position = start &+ read.length
        return read.value
    }

    /// Whether this CPU runs `chimera_read_float_row` (SSSE3 + SSE4.1).
    static let rowKernel = chimera_float_rows_available() != 0

    /// Runs the row kernel from `position` into `out`'s spare room; true when it stopped at the row's
    /// `]` right after a number.
    mutating func readRowKernel(into out: inout FloatRows) -> Bool {
        guard let raw = bytes.baseAddress else { return false }
        let start = raw.advanced(by: position).assumingMemoryBound(to: UInt8.self)
        let available = bytes.count - position
        var ended: Int32 = 0
        let consumed = out.appendSpare { spare, room in
            var count = 0
            let consumed = chimera_read_float_row(start, available, spare, room, &count, &ended)
            return (count, consumed)
        }
        position += consumed
        return ended != 0
    }

    /// `-?int(.frac)?([eE][+-]?exp)?` at `p` (at least `fastWindow` readable bytes) as float32 and its
    /// length; nil for other shapes (leading zeros, 8+ integer digits, 24+ fraction digits, a mantissa
    /// from 2^63, |power of ten| > 22) and for the rare values too close to a float32 rounding
    /// boundary to trust one multiply.
    @inline(__always)
    static func decimalFloat(_ p: UnsafePointer<UInt8>, _ tables: DecimalTables) -> (value: Float, length: Int)? {
        let negative = p[0] == UInt8(ascii: "-")
        var i = negative ? 1 : 0
        let integer = digitWord(p + i)
        guard integer.count > 0, integer.count < 8, integer.count == 1 || p[i] != UInt8(ascii: "0") else { return nil }
        i &+= integer.count
        var mantissa = integer.value
        var power = 0
        if p[i] == UInt8(ascii: ".") {
            i &+= 1
            var words = 0
            repeat {
                let word = digitWord(p + i)
                guard mantissa <= tables.mantissaLimits[word.count] else { return nil }
                mantissa = mantissa &* tables.digitScales[word.count] &+ word.value
                power &-= word.count
                i &+= word.count
                words &+= 1
                if word.count < 8 {
                    // "1." is not a number.
                    if words == 1 && word.count == 0 { return nil }
                    break
                }
                if words == 3 { return nil }
            } while true
        }
        if p[i] | 0x20 == UInt8(ascii: "e") {
            i &+= 1
            let sign = p[i]
            let negativeExponent = sign == UInt8(ascii: "-")
            if negativeExponent || sign == UInt8(ascii: "+") { i &+= 1 }
            var exponent = 0
            var digits = 0
            while digits < 4, case let d = p[i] &- 48, d < 10 {
                exponent = exponent &* 10 &+ Int(d)
                digits &+= 1
                i &+= 1
            }
            guard digits > 0, digits < 4 else { return nil }
            power &+= negativeExponent ? -exponent : exponent
        }
        guard power >= -22, power <= 22 else { return nil }
        // Below 2^63 (see mantissaLimits) the conversion is one signed instruction.
        let product = Double(Int64(bitPattern: mantissa)) * tables.tens[22 &+ power]
        // Exact operands (m ≤ 2^53, 10^power exact) give the correctly rounded double itself. Otherwise
        // the product is within 2 ulps of the decimal's value, and rounding it to float can only differ
        // when it lies that close to the midpoint between two floats (bits 28…0 near 0x1000_0000).
        if mantissa > 1 << 53 || power < 0 {
            guard (product.bitPattern & 0x1FFF_FFFF) &- 0x0FFF_FFF8 > 16 else { return nil }
        }
        let value = Float(product)
        return (negative ? -value : value, i)
    }

    /// The offset of the first byte at `p` that ends a number in an array: ',', ']', whitespace or any
    /// other byte below ',' (a "+" there makes the lengths disagree: slow path). Nil past 23 bytes.
    /// Three words are always looked at: a branch on the length would mispredict on mixed lengths.
    @inline(__always)
    static func delimiter(_ p: UnsafePointer<UInt8>) -> Int? {
        @inline(__always) func marks(_ offset: Int) -> UInt64 {
            let word = UnsafeRawPointer(p + offset).loadUnaligned(as: UInt64.self).littleEndian
            // 0x80 in bytes below 0x2D (no borrow crosses bytes: each is at least 0x80 - 0x2D).
            let below = ~((word | 0x8080_8080_8080_8080) &- 0x2D2D_2D2D_2D2D_2D2D) & 0x8080_8080_8080_8080
            // 0x80 in bytes equal to ']' (exact per byte: no carries).
            let other = word ^ 0x5D5D_5D5D_5D5D_5D5D
            let bracket = ~(((other & 0x7F7F_7F7F_7F7F_7F7F) &+ 0x7F7F_7F7F_7F7F_7F7F) | other) & 0x8080_8080_8080_8080
            return below | bracket
        }
        let first = marks(0)
        let second = marks(8)
        let third = marks(16)
        let end =
            first != 0
            ? first.trailingZeroBitCount &>> 3
            : second != 0 ? 8 &+ second.trailingZeroBitCount &>> 3 : 16 &+ third.trailingZeroBitCount &>> 3
        return end < 24 ? end : nil
    }

    /// How many digits start at `p` (0…8) and their value, from one unaligned 64-bit load.
    @inline(__always)
    private static func digitWord(_ p: UnsafePointer<UInt8>) -> (count: Int, value: UInt64) {
        let chunk = UnsafeRawPointer(p).loadUnaligned(as: UInt64.self).littleEndian
        // Per byte: 0x80 where the byte is not '0'…'9' (carries only disturb bytes after the first one).
        let shifted = chunk ^ 0x3030_3030_3030_3030
        let notDigit = ((shifted &+ 0x7676_7676_7676_7676) | shifted) & 0x8080_8080_8080_8080
        let count = notDigit.trailingZeroBitCount &>> 3
        // The digits moved to the top bytes: leading zero bytes are leading zeros (none left for 0).
        return (count, eightDigits(shifted << UInt64(64 &- 8 &* count)))
    }

    /// The value of eight digit bytes (already minus '0', the first in the lowest byte).
    @inline(__always)
    private static func eightDigits(_ digits: UInt64) -> UInt64 {
        // Pairs, then quadruples, then all eight: each step multiplies neighbours into place.
        // (Swift's >> binds tighter than &*: the products are parenthesised.)
        var v = ((digits & 0x0F0F_0F0F_0F0F_0F0F) &* 2561) >> 8
        v = ((v & 0x00FF_00FF_00FF_00FF) &* 6_553_601) >> 16
        return ((v & 0x0000_FFFF_0000_FFFF) &* 42_949_672_960_001) >> 32
    }
}

/// Constant tables of the fast path, built once and never freed; a reader holds the pointers so the
/// hot loop neither checks a global's initialisation nor bounds.
struct DecimalTables: @unchecked Sendable {
    /// 10^-22 … 10^22 as doubles (index 22 + power): exact from 10^0 up, rounded below.
    let tens: UnsafePointer<Double>
    /// 10^0 … 10^8.
    let digitScales: UnsafePointer<UInt64>
    /// The largest mantissa that can take n more digits and stay below 2^63 (n = 0…8).
    let mantissaLimits: UnsafePointer<UInt64>

    static let shared = DecimalTables()

    private init() {
        let tens = UnsafeMutablePointer<Double>.allocate(capacity: 45)
        for power in -22...22 { tens[22 + power] = Double("1e\(power)")! }
        let scales = UnsafeMutablePointer<UInt64>.allocate(capacity: 9)
        let limits = UnsafeMutablePointer<UInt64>.allocate(capacity: 9)
        var scale: UInt64 = 1
        for n in 0...8 {
            scales[n] = scale
            limits[n] = (UInt64(Int64.max) - (scale - 1)) / scale
            scale *= 10
        }
        self.tens = UnsafePointer(tens)
        digitScales = UnsafePointer(scales)
        mantissaLimits = UnsafePointer(limits)
    }
}
