/// A float array as model files and checkpoints store it: a JSON array when short (readable), and
/// base64 of its little-endian float32 bytes when long. An MLP's million weights and their moments as
/// JSON numbers took the master seconds to write — long enough to miss heartbeats — and as base64
/// take milliseconds. Either form is read back.
@propertyWrapper
public struct PackedFloats: Sendable, Equatable, Codable {
    public var wrappedValue: [Float]

    /// Arrays at least this long are written as base64.
    static let packedFrom = 256

    public init(wrappedValue: [Float]) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            guard let bytes = Base64.decode(text), bytes.count % 4 == 0 else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "not base64 of float32 values")
            }
            wrappedValue = (0..<(bytes.count / 4)).map { index in
                let b = index * 4
                let bits =
                    UInt32(bytes[b]) | UInt32(bytes[b + 1]) << 8 | UInt32(bytes[b + 2]) << 16 | UInt32(bytes[b + 3])
                    << 24
                return Float(bitPattern: bits)
            }
        } else {
            wrappedValue = try container.decode([Float].self)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        guard wrappedValue.count >= Self.packedFrom else { return try container.encode(wrappedValue) }
        var bytes = [UInt8](repeating: 0, count: wrappedValue.count * 4)
        for (index, value) in wrappedValue.enumerated() {
            let bits = value.bitPattern
            bytes[index * 4] = UInt8(truncatingIfNeeded: bits)
            bytes[index * 4 + 1] = UInt8(truncatingIfNeeded: bits >> 8)
            bytes[index * 4 + 2] = UInt8(truncatingIfNeeded: bits >> 16)
            bytes[index * 4 + 3] = UInt8(truncatingIfNeeded: bits >> 24)
        }
        try container.encode(Base64.encode(bytes))
    }
}

/// RFC 4648 base64 (no Foundation in the pure core).
enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out += [
                alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)],
                alphabet[Int(n & 63)],
            ]
            index += 3
        }
        let left = bytes.count - index
        if left > 0 {
            let n = UInt32(bytes[index]) << 16 | (left == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)]]
            out +=
                left == 2 ? [alphabet[Int(n >> 6 & 63)], UInt8(ascii: "=")] : [UInt8(ascii: "="), UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var table = [UInt8](repeating: 255, count: 256)
        for (value, character) in alphabet.enumerated() { table[Int(character)] = UInt8(value) }
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(input.count / 4 * 3)
        var index = 0
        while index < input.count {
            var n: UInt32 = 0
            var padding = 0
            for offset in 0..<4 {
                let character = input[index + offset]
                if character == UInt8(ascii: "="), index + 4 == input.count, offset >= 2 {
                    padding += 1
                    n <<= 6
                    continue
                }
                let value = table[Int(character)]
                guard value != 255, padding == 0 else { return nil }
                n = n << 6 | UInt32(value)
            }
            out.append(UInt8(n >> 16 & 255))
            if padding < 2 { out.append(UInt8(n >> 8 & 255)) }
            if padding < 1 { out.append(UInt8(n & 255)) }
            index += 4
        }
        return out
    }
}
