/// The predict body's hot path: numbers of the everyday shape `-?digits(.digits)?` (at most 19
/// significant digits, no exponent) read eight digits per step with SWAR arithmetic on a 64-bit load.
/// Anything else returns nil with the position unchanged, and the general `number()` reads it (and
/// reports its errors), so both paths accept and round exactly the same numbers.
extension JSONReader {
    /// 10^0 … 10^8 for joining digit runs.
    private static let digitScales: [UInt64] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000]

    /// 10^-0 … 10^-22 rounded to double: a multiply instead of a divide (see `simpleFloat`).
    private static let inversePowersOfTen: [Double] = (0...22).map { Double("1e-\($0)")! }

    /// `simpleNumber` rounded to float32 without a division: m·10^-k is within 2 ulps of m/10^k, and
    /// rounding that to float can only differ when it lies that close to the midpoint between two
    /// floats (bits 28…0 of the double near 0x1000_0000); those rare values take the exact divide.
    @inline(__always)
    mutating func simpleFloat() -> Float? {
        let start = position
        guard let (mantissa, fractionDigits, negative) = simpleDecimal() else { return nil }
        let product = Double(mantissa) * Self.inversePowersOfTen[fractionDigits]
        let belowFloat = product.bitPattern & 0x1FFF_FFFF
        let value: Float
        if fractionDigits == 0 || belowFloat &- 0x0FFF_FFF8 > 16 {
            value = Float(product)
        } else {
            position = start
            guard let exact = simpleNumber() else { return nil }
            return Float(exact)
        }
        return negative ? -value : value
    }

    @inline(__always)
    mutating func simpleNumber() -> Double? {
        guard let (mantissa, fractionDigits, negative) = simpleDecimal() else { return nil }
        let magnitude = Double(mantissa) / powersOfTen[fractionDigits]
        return negative ? -magnitude : magnitude
    }

    /// The digits of a simple number as an exact integer and the count of fraction digits; advances
    /// past it, or returns nil with the position unchanged.
    @inline(__always)
    private mutating func simpleDecimal() -> (mantissa: UInt64, fractionDigits: Int, negative: Bool)? {
        let count = bytes.count
        guard let raw = bytes.baseAddress else { return nil }
        let base = raw.assumingMemoryBound(to: UInt8.self)
        var i = position
        guard i < count else { return nil }
        let negative = base[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        var mantissa: UInt64 = 0
        let integerStart = i
        guard let integerDigits = digitRun(base, count, &i, &mantissa), integerDigits > 0 else { return nil }
        // "0123" is invalid JSON: leave it to number() for the error.
        if integerDigits > 1 && base[integerStart] == UInt8(ascii: "0") { return nil }
        var fractionDigits = 0
        if i < count && base[i] == UInt8(ascii: ".") {
            i += 1
            guard let digits = digitRun(base, count, &i, &mantissa), digits > 0 else { return nil }
            fractionDigits = digits
        }
        if i < count && (base[i] | 0x20) == UInt8(ascii: "e") { return nil }
        guard integerDigits + fractionDigits <= 19, mantissa <= 1 << 53, fractionDigits <= 22 else { return nil }
        position = i
        return (mantissa, fractionDigits, negative)
    }

    /// Appends the digits at `i` to `value`; returns how many there were (nil past 19: the caller
    /// falls back, so a wrapped value is never used).
    @inline(__always)
    private func digitRun(_ base: UnsafePointer<UInt8>, _ count: Int, _ i: inout Int, _ value: inout UInt64) -> Int? {
        var digits = 0
        while i + 8 <= count {
            let chunk = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self).littleEndian
            // Per byte: 0x80 where the byte is not '0'…'9' (carries only disturb bytes after the first one).
            let shifted = chunk ^ 0x3030_3030_3030_3030
            let notDigit = ((shifted &+ 0x7676_7676_7676_7676) | shifted) & 0x8080_8080_8080_8080
            let run = notDigit == 0 ? 8 : notDigit.trailingZeroBitCount / 8
            if run > 0 {
                digits += run
                if digits > 19 { return nil }
                value = value &* Self.digitScales[run] &+ Self.eightDigits(shifted << UInt64(8 * (8 - run)))
                i += run
            }
            if run < 8 { return digits }
        }
        while i < count {
            let d = base[i] &- 48
            if d >= 10 { break }
            digits += 1
            if digits > 19 { return nil }
            value = value &* 10 &+ UInt64(d)
            i += 1
        }
        return digits
    }

    /// The value of eight digit bytes (already minus '0', the first in the lowest byte; leading
    /// zero bytes are leading zeros).
    @inline(__always)
    private static func eightDigits(_ digits: UInt64) -> UInt64 {
        // Pairs, then quadruples, then all eight: each step multiplies neighbours into place.
        // (Swift's >> binds tighter than &*: the products are parenthesised.)
        var v = ((digits & 0x0F0F_0F0F_0F0F_0F0F) &* 2561) >> 8
        v = ((v & 0x00FF_00FF_00FF_00FF) &* 6_553_601) >> 16
        return ((v & 0x0000_FFFF_0000_FFFF) &* 42_949_672_960_001) >> 32
    }
}
