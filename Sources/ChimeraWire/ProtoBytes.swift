/// The few protocol-buffer wire rules the hand-written round codec needs (varints, fixed64, length-
/// delimited fields), written as protobuf's canonical encoder writes them.
struct ProtoWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 96) { bytes.reserveCapacity(capacity) }

    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func tag(_ field: Int, _ wireType: UInt8) { varint(UInt64(field) << 3 | UInt64(wireType)) }

    /// A varint field, left out when zero (proto3 defaults are not written).
    mutating func varintField(_ field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        tag(field, 0)
        varint(value)
    }

    /// A double field, left out when its bit pattern is zero (so -0.0 is written, as SwiftProtobuf does).
    mutating func doubleField(_ field: Int, _ value: Double) {
        guard value.bitPattern != 0 else { return }
        tag(field, 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A fixed64 field, left out when zero.
    mutating func fixed64Field(_ field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        tag(field, 1)
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A length-delimited field whose content `body` writes. The content is written in place after a
    /// one-byte length, which is widened afterwards in the rare case it is 128 bytes or more.
    mutating func nested(_ field: Int, _ body: (inout ProtoWriter) -> Void) {
        tag(field, 2)
        let lengthAt = bytes.count
        bytes.append(0)
        body(&self)
        let length = bytes.count - lengthAt - 1
        if length < 0x80 {
            bytes[lengthAt] = UInt8(length)
        } else {
            var prefix = ProtoWriter(capacity: 10)
            prefix.varint(UInt64(length))
            bytes.replaceSubrange(lengthAt...lengthAt, with: prefix.bytes)
        }
    }

    mutating func string(_ field: Int, _ value: StaticString) {
        guard value.utf8CodeUnitCount > 0 else { return }
        tag(field, 2)
        varint(UInt64(value.utf8CodeUnitCount))
        value.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }
}

/// Reads protobuf fields from bytes; every defect (truncation, overlong varint) reads as nil.
struct ProtoReader {
    private let bytes: UnsafeRawBufferPointer
    private var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var atEnd: Bool { offset == bytes.count }

    mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count, shift < 64 {
            let byte = bytes[offset]
            offset += 1
            if shift == 63 && byte > 1 { return nil }  // beyond 64 bits
            value |= UInt64(byte & 0x7f) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
        return nil
    }

    /// The next field's number and wire type, or nil at the end or on a malformed key.
    mutating func field() -> (number: Int, wireType: UInt8)? {
        guard !atEnd, let key = varint(), key >> 3 > 0, key >> 3 <= UInt64(Int32.max) else { return nil }
        return (Int(key >> 3), UInt8(key & 7))
    }

    mutating func fixed64() -> UInt64? {
        guard bytes.count - offset >= 8 else { return nil }
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        offset += 8
        return UInt64(littleEndian: value)
    }

    /// The content of a length-delimited field.
    mutating func lengthDelimited() -> UnsafeRawBufferPointer? {
        guard let length = varint(), length <= UInt64(bytes.count - offset) else { return nil }
        let start = offset
        offset += Int(length)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
    }
}
