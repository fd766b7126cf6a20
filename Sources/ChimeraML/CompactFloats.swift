/// The float formats pushes and weights may travel in (`--wire-dtype`).
public enum WireDType: String, Sendable, CaseIterable, Codable {
    case float32, bfloat16, float16

    /// Bytes per value on the wire.
    public var byteWidth: Int { self == .float32 ? 4 : 2 }

    /// `value` rounded to the nearest value this format holds (ties to even); float16 saturates at
    /// ±65504 rather than overflowing (a gradient that large is not one to lose as infinity).
    @inline(__always)
    public func rounded(_ value: Float) -> Float {
        switch self {
        case .float32: return value
        case .bfloat16:
            let bits = value.bitPattern
            guard value.isFinite else { return value }
            let rounding: UInt32 = 0x7FFF + ((bits >> 16) & 1)
            return Float(bitPattern: (bits &+ rounding) & 0xFFFF_0000)
        case .float16:
            return Float(Float16(max(-65504, min(65504, value))))
        }
    }
}

/// Error feedback for compressed updates (Seide et al. 2014; Karimireddy et al. 2019): what rounding
/// to the wire format drops from one push is added to the next, so no part of the gradient is lost for
/// good — the sum of what was sent stays within one rounding step of the sum of the true updates.
public struct ErrorFeedback: Sendable {
    public let format: WireDType
    public private(set) var residual: [Float]

    public init(format: WireDType, count: Int) {
        self.format = format
        residual = [Float](repeating: 0, count: format == .float32 ? 0 : count)
    }

    /// The values to send for `update`: each exactly representable in the format.
    public mutating func compress(_ update: [Float]) -> [Float] {
        guard format != .float32 else { return update }
        var sent = update
        let format = format
        // On raw pointers, bfloat16's rounding inline (the loop vectorises).
        sent.withUnsafeMutableBufferPointer { out in
            residual.withUnsafeMutableBufferPointer { r in
                switch format {
                case .bfloat16:
                    for i in 0..<out.count {
                        let wanted = out[i] + r[i]
                        let bits = wanted.bitPattern
                        let finite = bits & 0x7F80_0000 != 0x7F80_0000
                        let held =
                            finite ? Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000) : wanted
                        out[i] = held
                        r[i] = wanted - held
                    }
                case .float16, .float32:
                    for i in 0..<out.count {
                        let wanted = out[i] + r[i]
                        out[i] = format.rounded(wanted)
                        r[i] = wanted - out[i]
                    }
                }
            }
        }
        return sent
    }
}
