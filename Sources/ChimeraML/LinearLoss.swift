/// The loss of a single-output linear model, eight rows at a time. The kernels are generic over it so
/// each loss gets its own loop with the vector code inlined.
protocol LinearLoss {
    /// The target a label stands for: the value (regression), 0/1 (logistic) or ±1 (hinge).
    static func target(label: SIMD8<Float>, positive: SIMD8<Float>) -> SIMD8<Float>
    /// d(loss)/d(score) and the loss.
    static func derivativeAndLoss(score: SIMD8<Float>, target: SIMD8<Float>) -> (
        derivative: SIMD8<Float>, loss: SIMD8<Float>
    )
}

enum SquaredLoss: LinearLoss {
    @inline(__always)
    static func target(label: SIMD8<Float>, positive: SIMD8<Float>) -> SIMD8<Float> { label }

    @inline(__always)
    static func derivativeAndLoss(score: SIMD8<Float>, target: SIMD8<Float>) -> (
        derivative: SIMD8<Float>, loss: SIMD8<Float>
    ) {
        let residual = score - target
        return (residual, 0.5 * residual * residual)
    }
}

enum LogLoss: LinearLoss {
    @inline(__always)
    static func target(label: SIMD8<Float>, positive: SIMD8<Float>) -> SIMD8<Float> {
        SIMD8(repeating: 0).replacing(with: 1, where: label .== positive)
    }

    @inline(__always)
    static func derivativeAndLoss(score: SIMD8<Float>, target: SIMD8<Float>) -> (
        derivative: SIMD8<Float>, loss: SIMD8<Float>
    ) {
        // e = exp(−|s|); σ(s) = 1/(1+e) for s ≥ 0, e/(1+e) otherwise; softplus(s) = max(s,0) + log1p(e)
        let negativeScore = score .< 0
        let e = BinaryKernel.exp(score.replacing(with: -score, where: .!negativeScore))
        let positive = 1 / (1 + e)
        let sigmoid = positive.replacing(with: e * positive, where: negativeScore)
        let softplus = score.replacing(with: 0, where: negativeScore) + BinaryKernel.log1pSmall(e)
        return (sigmoid - target, softplus - target * score)
    }
}

enum HingeLoss: LinearLoss {
    @inline(__always)
    static func target(label: SIMD8<Float>, positive: SIMD8<Float>) -> SIMD8<Float> {
        SIMD8(repeating: -1).replacing(with: 1, where: label .== positive)
    }

    @inline(__always)
    static func derivativeAndLoss(score: SIMD8<Float>, target: SIMD8<Float>) -> (
        derivative: SIMD8<Float>, loss: SIMD8<Float>
    ) {
        let margin = target * score
        let active = margin .< 1
        return (
            SIMD8(repeating: 0).replacing(with: -target, where: active),
            SIMD8(repeating: 0).replacing(with: 1 - margin, where: active)
        )
    }
}
