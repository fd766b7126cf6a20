import ChimeraCluster
import ChimeraML
import ChimeraWire
import Testing

/// `--wire-dtype`: the rounding the workers' error feedback assumes is the one the tensors carry.
@Suite("Compact frames")
struct CompactFramesTests {
    @Test("bfloat16 and float16 tensors hold exactly the values WireDType rounds to")
    func roundingMatchesTheWire() {
        var random = SplitMix64(seed: 9)
        let values =
            (0..<4_000).map { _ in Float(Double(random.next() % 2_000_001) / 1e6 - 1) * 1e-2 }
            + [0, -0, 1e-30, 70_000, -70_000, 3.1415927]
        for format in [WireDType.bfloat16, .float16] {
            let tensor = Tensor.floats(values, as: format.dtype, shape: [values.count])
            #expect(tensor.byteArray().count == values.count * 2)
            let back = tensor.floats()
            let expected = values.map(format.rounded)
            #expect(back.map(\.bitPattern) == expected.map(\.bitPattern), "\(format)")
            // Rounded once, a value does not move again.
            #expect(expected.map(format.rounded) == expected)
            var sum = [Float](repeating: 0, count: values.count)
            sum.withUnsafeMutableBufferPointer { tensor.accumulateFloats(into: $0, scale: 2) }
            #expect(zip(sum, expected).allSatisfy { $0 == 2 * $1 })
        }
    }

    @Test("error feedback: what was sent sums to what was meant, within one rounding step")
    func errorFeedback() {
        var feedback = ErrorFeedback(format: .bfloat16, count: 3)
        var meant: [Double] = [0, 0, 0]
        var sent: [Double] = [0, 0, 0]
        // Updates far below bfloat16's resolution at 1.0 would be lost for good without feedback.
        for step in 0..<1_000 {
            let update: [Float] = [1 + 1e-4, 1e-3 * Float(step % 7), -0.3333]
            let compressed = feedback.compress(update)
            #expect(compressed.allSatisfy { WireDType.bfloat16.rounded($0) == $0 })
            for i in 0..<3 {
                meant[i] += Double(update[i])
                sent[i] += Double(compressed[i])
            }
        }
        for i in 0..<3 {
            // The difference is the residual carried: under half a rounding step of the values sent.
            #expect(abs(meant[i] - sent[i]) <= 0.004, "value \(i): \(meant[i]) vs \(sent[i])")
        }
        #expect(ErrorFeedback(format: .float32, count: 3).residual.isEmpty)
    }
}
