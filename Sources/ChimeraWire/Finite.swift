import CKernels

/// Finds the first NaN or infinity in a float tensor by looking at exponent bits (any alignment).
func firstNonFinite(_ tensor: Tensor) -> Int? {
    tensor.withUnsafeBytes { raw -> Int? in
        guard let base = raw.baseAddress else { return nil }
        switch tensor.dtype {
        case .float32:
            return firstAllOnes(raw, as: UInt32.self, mask: 0x7F80_0000) {
                chimera_count_all_ones_u32(base, $0, 0x7F80_0000)
            }
        case .float64:
            return firstAllOnes(raw, as: UInt64.self, mask: 0x7FF0_0000_0000_0000) {
                chimera_count_all_ones_u64(base, $0, 0x7FF0_0000_0000_0000)
            }
        case .float16:
            return firstAllOnes(raw, as: UInt16.self, mask: 0x7C00) { chimera_count_all_ones_u16(base, $0, 0x7C00) }
        case .bfloat16:
            return firstAllOnes(raw, as: UInt16.self, mask: 0x7F80) { chimera_count_all_ones_u16(base, $0, 0x7F80) }
        case .int32, .int64, .uint8: return nil
        }
    }
}

/// Index of the first element whose `mask` bits are all set (exponent all ones: NaN or ±infinity):
/// `count` (the vectorised C count over the first n elements) says whether there is one, and only
/// then a scalar scan finds where.
private func firstAllOnes<T: FixedWidthInteger>(
    _ raw: UnsafeRawBufferPointer, as: T.Type, mask: T, count: (Int) -> Int
) -> Int? {
    let elements = raw.count / MemoryLayout<T>.size
    guard count(elements) > 0 else { return nil }
    for i in 0..<elements where raw.loadUnaligned(fromByteOffset: i &* MemoryLayout<T>.size, as: T.self) & mask == mask
    {
        return i
    }
    return nil
}
