/// The hot loop of single-output models (linear, logistic, hinge), vectorised by hand.
///
/// Rows are processed in blocks: scores for the block (SIMD dot products over features), then the
/// loss derivatives for the whole block at once (SIMD exp/log), then the gradient accumulation. The
/// transcendental functions dominate a scalar implementation (three libm calls per row); here they run
/// eight rows at a time with polynomial approximations accurate to a few float ulps.
enum BinaryKernel {
    static let block = 256

    /// Mean loss over the rows; `gradient` (features + 1, bias last) receives the mean gradient.
    static func lossAndGradient(
        kind: ModelKind, positive: Float, weights w: UnsafeBufferPointer<Float>, x: UnsafeBufferPointer<Float>,
        labels: UnsafeBufferPointer<Float>, rows: Int, features d: Int, gradient g: UnsafeMutableBufferPointer<Float>
    ) -> Double {
        // Scratch for one block, reused: plain pointers keep the loops free of Array checks.
        let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: 4 * block)
        defer { scratch.deallocate() }
        scratch.initialize(repeating: 0)
        let scores = UnsafeMutableBufferPointer(rebasing: scratch[0..<block])
        let targets = UnsafeMutableBufferPointer(rebasing: scratch[block..<(2 * block)])
        let derivatives = UnsafeMutableBufferPointer(rebasing: scratch[(2 * block)..<(3 * block)])
        let losses = UnsafeMutableBufferPointer(rebasing: scratch[(3 * block)..<(4 * block)])
        let wp = w.baseAddress!
        let xp = x.baseAddress!
        var total = 0.0
        let bias = w[d]
        var biasGradient: Float = 0
        var start = 0
        while start < rows {
            let count = min(block, rows - start)
            for r in 0..<count {
                scores[r] = dot(wp, xp + (start + r) * d, d) + bias
            }
            switch kind {
            case .linearRegression:
                for r in 0..<count { targets[r] = labels[start + r] }
            case .logisticRegression:
                for r in 0..<count { targets[r] = labels[start + r] == positive ? 1 : 0 }
            case .linearSVM, .softmax, .mlp:
                for r in 0..<count { targets[r] = labels[start + r] == positive ? 1 : -1 }
            }
            derivativesAndLosses(
                kind: kind, scores: scores, targets: UnsafeBufferPointer(targets), count: count,
                derivatives: derivatives,
                losses: losses)
            var blockLoss: Float = 0
            for r in 0..<count {
                blockLoss += losses[r]
                let dv = derivatives[r]
                if dv == 0 { continue }
                axpy(dv, xp + (start + r) * d, g.baseAddress!, d)
                biasGradient += dv
            }
            total += Double(blockLoss)
            start += count
        }
        g[d] += biasGradient
        return total
    }

    /// d(loss)/d(score) and the loss, eight rows at a time.
    private static func derivativesAndLosses(
        kind: ModelKind, scores s: UnsafeMutableBufferPointer<Float>, targets t: UnsafeBufferPointer<Float>, count: Int,
        derivatives dv: UnsafeMutableBufferPointer<Float>, losses l: UnsafeMutableBufferPointer<Float>
    ) {
        switch kind {
        case .linearRegression:
            derivativesAndLosses(SquaredLoss.self, scores: s, targets: t, count: count, derivatives: dv, losses: l)
        case .logisticRegression:
            derivativesAndLosses(LogLoss.self, scores: s, targets: t, count: count, derivatives: dv, losses: l)
        case .linearSVM, .softmax, .mlp:
            derivativesAndLosses(HingeLoss.self, scores: s, targets: t, count: count, derivatives: dv, losses: l)
        }
    }

    private static func derivativesAndLosses<Loss: LinearLoss>(
        _: Loss.Type, scores s: UnsafeMutableBufferPointer<Float>, targets t: UnsafeBufferPointer<Float>, count: Int,
        derivatives dv: UnsafeMutableBufferPointer<Float>, losses l: UnsafeMutableBufferPointer<Float>
    ) {
        // The buffers hold a whole block (a multiple of 8): the tail lanes compute on stale values
        // and are never stored.
        let padded = (count + 7) & ~7
        var r = 0
        while r < padded {
            let score = UnsafeRawPointer(s.baseAddress! + r).loadUnaligned(as: SIMD8<Float>.self)
            let target = UnsafeRawPointer(t.baseAddress! + r).loadUnaligned(as: SIMD8<Float>.self)
            let (derivative, loss) = Loss.derivativeAndLoss(score: score, target: target)
            // Lanes past `count` land in the block's unused tail (the buffers hold a whole block).
            UnsafeMutableRawPointer(dv.baseAddress! + r).storeBytes(of: derivative, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(l.baseAddress! + r).storeBytes(of: loss, as: SIMD8<Float>.self)
            r += 8
        }
    }

    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        var j = 0
        while j + 8 <= n {
            acc +=
                UnsafeRawPointer(a + j).loadUnaligned(as: SIMD8<Float>.self)
                * UnsafeRawPointer(b + j).loadUnaligned(as: SIMD8<Float>.self)
            j += 8
        }
        var sum = acc.sum()
        while j < n {
            sum += a[j] * b[j]
            j += 1
        }
        return sum
    }

    @inline(__always)
    static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let a = SIMD8<Float>(repeating: alpha)
        var j = 0
        while j + 8 <= n {
            let updated =
                UnsafeRawPointer(y + j).loadUnaligned(as: SIMD8<Float>.self)
                + a * UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(y + j).storeBytes(of: updated, as: SIMD8<Float>.self)
            j += 8
        }
        while j < n {
            y[j] += alpha * x[j]
            j += 1
        }
    }

    /// e^x for x ≤ 0 (what the logistic loss needs), Cody–Waite range reduction and a degree-6
    /// polynomial; relative error ≈ 2e-7 on [−87, 0].
    @inline(__always)
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let clamped = x.replacing(with: -87, where: x .< -87)
        // Round to nearest with the 1.5·2^23 trick (SIMD `rounded` is not vectorised): the integer
        // lands in the low mantissa bits, read back by subtracting the magic number's bit pattern.
        let shifted = clamped * 1.442_695_04 + 12_582_912
        let n = shifted - 12_582_912
        let r = clamped - n * 0.693_359_375 + n * 2.121_944_4e-4
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_12e-1
        let poly = p * r * r + r + 1
        let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let scale = (integer &+ 127) &<< 23
        return poly * unsafeBitCast(scale, to: SIMD8<Float>.self)
    }

    /// log(1 + e) for e in [0, 1] without a division: m = 1 + e is brought to [√½, √2] (halved above
    /// √2, adding ln 2), then log(1 + f) = f − f²/2 + f³·P(f) with Cephes' logf coefficients
    /// (relative error ≈ 1e-7).
    @inline(__always)
    static func log1pSmall(_ e: SIMD8<Float>) -> SIMD8<Float> {
        let high = e .> 0.414_213_56
        let f = e.replacing(with: 0.5 * e - 0.5, where: high)
        let z = f * f
        var p = SIMD8<Float>(repeating: 7.037_683_629_2e-2)
        p = p * f - 1.151_461_031_0e-1
        p = p * f + 1.167_699_874_0e-1
        p = p * f - 1.242_014_084_6e-1
        p = p * f + 1.424_932_278_7e-1
        p = p * f - 1.666_805_766_5e-1
        p = p * f + 2.000_071_476_5e-1
        p = p * f - 2.499_999_399_3e-1
        p = p * f + 3.333_333_117_4e-1
        let log = f + (p * f * z - 0.5 * z)
        return log + SIMD8<Float>(repeating: 0).replacing(with: 0.693_147_18, where: high)
    }
}
