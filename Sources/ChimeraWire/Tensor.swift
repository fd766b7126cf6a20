import ZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// A dense row-major array as it travels in a tensor frame: dtype, shape and little-endian bytes.
///
/// A tensor is either built here (owned, 64-byte aligned memory, sent without a copy) or decoded from
/// a received frame, in which case it reads the frame's bytes in place and keeps the frame alive.
/// Received bytes may be unaligned: use the accessors below rather than binding the pointer.
public struct Tensor {
    enum Storage {
        case owned(TensorBuffer)
        case frame(Frame)
    }

    public let dtype: DType
    public let shape: [Int]
    let storage: Storage

    /// Allocates a tensor and lets `initialize` write all `byteCount` bytes.
    public init(dtype: DType, shape: [Int], initialize: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.dtype = dtype
        self.shape = shape
        let buffer = TensorBuffer(byteCount: shape.reduce(1, *) * dtype.byteWidth)
        try initialize(
            UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[0..<(shape.reduce(1, *) * dtype.byteWidth)]))
        storage = .owned(buffer)
    }

    /// Wraps a received frame whose size the decoder has checked.
    init(dtype: DType, shape: [Int], frame: Frame) {
        self.dtype = dtype
        self.shape = shape
        storage = .frame(frame)
    }

    /// A float32 tensor holding `values`; `shape` defaults to `[values.count]`.
    public static func float32(_ values: [Float], shape: [Int]? = nil) -> Tensor {
        let shape = shape ?? [values.count]
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        return Tensor(dtype: .float32, shape: shape) { out in
            values.withUnsafeBytes { out.copyMemory(from: $0) }
        }
    }

    /// A float32 tensor over `count` values already written to `memory` (from
    /// `UnsafeMutableRawBufferPointer.allocate(byteCount:alignment:)`, which the tensor now owns and
    /// frees): for producers that learn the count while writing, such as a predict body being read.
    public static func float32(adopting memory: UnsafeMutableRawBufferPointer, count: Int) -> Tensor {
        precondition(count >= 0 && count * 4 <= memory.count, "\(count) floats do not fit in \(memory.count) bytes")
        return Tensor(dtype: .float32, shape: [count], storage: .owned(TensorBuffer(adopting: memory)))
    }

    /// The same values with another shape of the same element count (no copy).
    public func reshaped(_ shape: [Int]) -> Tensor {
        precondition(
            shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == elementCount,
            "cannot reshape \(self.shape) to \(shape)")
        return Tensor(dtype: dtype, shape: shape, storage: storage)
    }

    /// The index of the first NaN or infinity of a float tensor (nil when all are finite).
    public var firstNonFiniteIndex: Int? { firstNonFinite(self) }

    private init(dtype: DType, shape: [Int], storage: Storage) {
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
    }

    /// A float64 tensor holding `values`; `shape` defaults to `[values.count]`.
    public static func float64(_ values: [Double], shape: [Int]? = nil) -> Tensor {
        let shape = shape ?? [values.count]
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        return Tensor(dtype: .float64, shape: shape) { out in
            values.withUnsafeBytes { out.copyMemory(from: $0) }
        }
    }

    /// A uint8 tensor holding raw bytes (for example an encoded tree).
    public static func bytes(_ values: [UInt8]) -> Tensor {
        Tensor(dtype: .uint8, shape: [values.count]) { out in
            values.withUnsafeBytes { out.copyMemory(from: $0) }
        }
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { elementCount * dtype.byteWidth }

    /// Reads the bytes in place; the pointer is valid only inside `body` and may be unaligned.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        switch storage {
        case .owned(let buffer):
            try body(UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<byteCount]))
        case .frame(let message):
            try message.withUnsafeBytes(body)
        }
    }

    /// Reads a float32 tensor's values in place when its bytes are aligned for `Float` (a copy
    /// otherwise); the buffer is valid only inside `body`. Other dtypes are converted as `floats()` does.
    public func withUnsafeFloats<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        let count = elementCount
        if dtype == .float32 {
            let inPlace: R?? = try withUnsafeBytes { raw in
                guard let base = raw.baseAddress, raw.count >= count * 4,
                    Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0
                else { return .none }
                return .some(
                    try body(UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: count)))
            }
            if case .some(let result)? = inPlace { return result }
        }
        return try floats().withUnsafeBufferPointer(body)
    }

    /// The values as `Float`, converting from float16, bfloat16 or float64. Other dtypes trap.
    public func floats() -> [Float] {
        let count = elementCount
        return withUnsafeBytes { raw in
            switch dtype {
            case .float32:
                return [Float](unsafeUninitializedCapacity: count) { out, initialized in
                    if count > 0 { memcpy(out.baseAddress!, raw.baseAddress!, count * 4) }
                    initialized = count
                }
            case .float64:
                return (0..<count).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self)) }
            case .float16:
                return (0..<count).map {
                    Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))
                }
            case .bfloat16:
                return [Float](unsafeUninitializedCapacity: count) { out, initialized in
                    if let base = raw.baseAddress, Int(bitPattern: base) % 2 == 0 {
                        // Aligned (the usual frame): a typed loop that vectorises.
                        let halves = base.assumingMemoryBound(to: UInt16.self)
                        for i in 0..<count { out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: halves[i])) << 16) }
                    } else {
                        for i in 0..<count {
                            out[i] = Float(
                                bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16)
                        }
                    }
                    initialized = count
                }
            case .int32, .int64, .uint8:
                preconditionFailure("floats() on a \(dtype) tensor")
            }
        }
    }

    /// Writes the values as `Float` into `out` (which holds `elementCount`): no new array per round.
    public func readFloats(into out: UnsafeMutableBufferPointer<Float>) {
        precondition(out.count == elementCount, "readFloats: size mismatch")
        if dtype == .bfloat16 {
            withUnsafeBytes { raw in
                if let base = raw.baseAddress, Int(bitPattern: base) % 2 == 0 {
                    let halves = base.assumingMemoryBound(to: UInt16.self)
                    for i in 0..<out.count { out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: halves[i])) << 16) }
                } else {
                    for i in 0..<out.count {
                        out[i] = Float(
                            bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16)
                    }
                }
            }
            return
        }
        if dtype == .float32 {
            withUnsafeBytes { raw in
                if let base = raw.baseAddress, out.count > 0 { memcpy(out.baseAddress!, base, out.count * 4) }
            }
            return
        }
        let values = floats()
        for i in 0..<out.count { out[i] = values[i] }
    }

    /// The values as `Double`, converting from any float dtype.
    public func doubles() -> [Double] {
        if dtype == .float64 {
            let count = elementCount
            return withUnsafeBytes { raw in
                [Double](unsafeUninitializedCapacity: count) { out, initialized in
                    if count > 0 { memcpy(out.baseAddress!, raw.baseAddress!, count * 8) }
                    initialized = count
                }
            }
        }
        return floats().map(Double.init)
    }

    /// The raw bytes, copied.
    public func byteArray() -> [UInt8] { withUnsafeBytes { Array($0) } }

    /// A float16 or bfloat16 (or float32) tensor of `values`, each converted to the nearest value of
    /// the dtype (exact for values already rounded to it; float16 saturates at ±65504).
    public static func floats(_ values: [Float], as dtype: DType, shape: [Int]) -> Tensor {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        switch dtype {
        case .float32: return float32(values, shape: shape)
        case .bfloat16:
            return Tensor(dtype: .bfloat16, shape: shape) { out in
                // The tensor's own memory is 64-byte aligned: typed stores, a loop that vectorises.
                let halves = out.baseAddress!.assumingMemoryBound(to: UInt16.self)
                values.withUnsafeBufferPointer { source in
                    for index in 0..<source.count {
                        let bits = source[index].bitPattern
                        let finite = bits & 0x7F80_0000 != 0x7F80_0000
                        let rounded = finite ? (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) : bits
                        halves[index] = UInt16(truncatingIfNeeded: rounded >> 16).littleEndian
                    }
                }
            }
        case .float16:
            return Tensor(dtype: .float16, shape: shape) { out in
                for (index, value) in values.enumerated() {
                    // Saturated: a value past float16's range is its largest, not infinity.
                    let held = Float16(max(-65504, min(65504, value)))
                    out.storeBytes(of: held.bitPattern.littleEndian, toByteOffset: index * 2, as: UInt16.self)
                }
            }
        default: preconditionFailure("floats(_:as:) makes float tensors, not \(dtype)")
        }
    }

    /// Adds this float tensor (float32, float16 or bfloat16) element-wise into `accumulator`.
    public func accumulateFloats(into accumulator: UnsafeMutableBufferPointer<Float>, scale: Float = 1) {
        precondition(accumulator.count == elementCount, "accumulate: size mismatch")
        switch dtype {
        case .float32: accumulateFloat32(into: accumulator, scale: scale)
        case .bfloat16:
            withUnsafeBytes { raw in
                if let base = raw.baseAddress, Int(bitPattern: base) % 2 == 0 {
                    let halves = base.assumingMemoryBound(to: UInt16.self)
                    for i in 0..<accumulator.count {
                        accumulator[i] += scale * Float(bitPattern: UInt32(UInt16(littleEndian: halves[i])) << 16)
                    }
                    return
                }
                for i in 0..<accumulator.count {
                    let bits = UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)))
                    accumulator[i] += scale * Float(bitPattern: bits << 16)
                }
            }
        case .float16:
            withUnsafeBytes { raw in
                for i in 0..<accumulator.count {
                    let bits = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
                    accumulator[i] += scale * Float(Float16(bitPattern: bits))
                }
            }
        default: preconditionFailure("accumulateFloats on a \(dtype) tensor")
        }
    }

    /// Adds this float32 tensor element-wise into `accumulator` (the master's aggregation hot path).
    /// Aligned frames are summed through a typed pointer so the loop vectorises; unaligned ones are
    /// read with unaligned loads.
    public func accumulateFloat32(into accumulator: UnsafeMutableBufferPointer<Float>, scale: Float = 1) {
        precondition(dtype == .float32 && accumulator.count == elementCount, "accumulate: dtype or size mismatch")
        withUnsafeBytes { raw in
            guard let base = raw.baseAddress, accumulator.count > 0 else { return }
            if Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
                let values = base.assumingMemoryBound(to: Float.self)
                if scale == 1 {
                    for i in 0..<accumulator.count { accumulator[i] += values[i] }
                } else {
                    for i in 0..<accumulator.count { accumulator[i] += scale * values[i] }
                }
            } else {
                for i in 0..<accumulator.count {
                    accumulator[i] += scale * raw.loadUnaligned(fromByteOffset: i &* 4, as: Float.self)
                }
            }
        }
    }

    /// The frame that carries this tensor: owned memory goes without a copy from `zeroCopyThreshold`
    /// bytes up (below it a copy is cheaper than libzmq's extra allocation); a received frame is copied.
    func frame(zeroCopyThreshold: Int) throws(ZMQError) -> Frame {
        switch storage {
        case .owned(let buffer) where byteCount >= zeroCopyThreshold:
            return try Frame(noCopy: UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<byteCount]), owner: buffer)
        default:
            return try withUnsafeBytes { (raw) throws(ZMQError) in try Frame(copying: raw) }
        }
    }
}

/// A tensor with the name its message gives it.
public struct NamedTensor {
    public var name: String
    public var tensor: Tensor

    public init(_ name: String, _ tensor: Tensor) {
        self.name = name
        self.tensor = tensor
    }
}
