/// Element type of a tensor frame, stored little-endian. Mirrors `chimera.v1.DType`.
public enum DType: Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case float32, float64, float16, bfloat16, int32, int64, uint8

    /// Bytes per element.
    public var byteWidth: Int {
        switch self {
        case .float64, .int64: 8
        case .float32, .int32: 4
        case .float16, .bfloat16: 2
        case .uint8: 1
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float64, .float16, .bfloat16: true
        case .int32, .int64, .uint8: false
        }
    }

    public var description: String {
        switch self {
        case .float32: "float32"
        case .float64: "float64"
        case .float16: "float16"
        case .bfloat16: "bfloat16"
        case .int32: "int32"
        case .int64: "int64"
        case .uint8: "uint8"
        }
    }

    public init?(wire: Chimera_V1_DType) {
        switch wire {
        case .float32: self = .float32
        case .float64: self = .float64
        case .float16: self = .float16
        case .bfloat16: self = .bfloat16
        case .int32: self = .int32
        case .int64: self = .int64
        case .uint8: self = .uint8
        case .unspecified, .UNRECOGNIZED: return nil
        }
    }

    public var wire: Chimera_V1_DType {
        switch self {
        case .float32: .float32
        case .float64: .float64
        case .float16: .float16
        case .bfloat16: .bfloat16
        case .int32: .int32
        case .int64: .int64
        case .uint8: .uint8
        }
    }
}
