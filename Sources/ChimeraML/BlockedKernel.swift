import CKernels

/// The single-output hot loop over `BlockedRows`: per block of eight rows, scores by `features` vector
/// multiply-adds, the loss derivatives of the eight rows at once, then the gradient by another
/// `features` multiply-adds into per-feature vector accumulators, summed across lanes once at the end.
enum BlockedKernel {
    /// Whether this CPU runs the AVX2/FMA pass in C (about twice the speed of the Swift SIMD8 pass,
    /// which compiles to SSE2).
    static let vectorExtensions = chimera_blocked_kernel_available() != 0

    /// Adds the summed (not averaged) gradient of `blocks` to `gradient`; returns the summed loss.
    /// `portable` forces the Swift pass (tests compare the two).
    static func lossAndGradient(
        kind: ModelKind, positive: Float, weights: [Float], rows: BlockedRows, blocks: Range<Int>,
        gradient: inout [Float], portable: Bool = false
    ) -> Double {
        if vectorExtensions && !portable {
            let loss: Int32
            switch kind {
            case .linearRegression: loss = Int32(CHIMERA_LOSS_SQUARED)
            case .logisticRegression: loss = Int32(CHIMERA_LOSS_LOGISTIC)
            case .linearSVM, .softmax, .mlp: loss = Int32(CHIMERA_LOSS_HINGE)
            }
            return rows.values.withUnsafeBufferPointer { x in
                rows.labels.withUnsafeBufferPointer { y in
                    gradient.withUnsafeMutableBufferPointer { g in
                        chimera_blocked_pass(
                            loss, x.baseAddress, y.baseAddress, rows.rows, blocks.lowerBound, blocks.upperBound,
                            rows.features,
                            weights, positive, g.baseAddress)
                    }
                }
            }
        }
        switch kind {
        case .linearRegression:
            return pass(
                SquaredLoss.self, positive: positive, weights: weights, rows: rows, blocks: blocks, gradient: &gradient)
        case .logisticRegression:
            return pass(
                LogLoss.self, positive: positive, weights: weights, rows: rows, blocks: blocks, gradient: &gradient)
        case .linearSVM, .softmax, .mlp:
            return pass(
                HingeLoss.self, positive: positive, weights: weights, rows: rows, blocks: blocks, gradient: &gradient)
        }
    }

    private static func pass<Loss: LinearLoss>(
        _: Loss.Type, positive: Float, weights: [Float], rows: BlockedRows, blocks: Range<Int>, gradient: inout [Float]
    ) -> Double {
        let d = rows.features
        let lanes = BlockedRows.lanes
        // Broadcast weights and the gradient accumulators, one vector per feature.
        let broadcast = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: d)
        let accumulators = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: d)
        defer {
            broadcast.deallocate()
            accumulators.deallocate()
        }
        for j in 0..<d {
            broadcast[j] = SIMD8(repeating: weights[j])
            accumulators[j] = .zero
        }
        let bias = SIMD8<Float>(repeating: weights[d])
        let positiveLabel = SIMD8<Float>(repeating: positive)
        var biasGradient = SIMD8<Float>.zero
        // Losses add up in a vector, moved into a Double every 64 blocks (precision, no per-block sum).
        var lossLanes = SIMD8<Float>.zero
        var total = 0.0
        rows.values.withUnsafeBufferPointer { valueBuffer in
            rows.labels.withUnsafeBufferPointer { labelBuffer in
                let xp = UnsafeRawPointer(valueBuffer.baseAddress!)
                let yp = UnsafeRawPointer(labelBuffer.baseAddress!)
                let stride = MemoryLayout<Float>.stride
                for block in blocks {
                    let base = xp + block * d * lanes * stride
                    var score = bias
                    for j in 0..<d {
                        score +=
                            broadcast[j] * base.loadUnaligned(fromByteOffset: j * lanes * stride, as: SIMD8<Float>.self)
                    }
                    let label = yp.loadUnaligned(fromByteOffset: block * lanes * stride, as: SIMD8<Float>.self)
                    let target = Loss.target(label: label, positive: positiveLabel)
                    var (derivative, loss) = Loss.derivativeAndLoss(score: score, target: target)
                    let filled = rows.rows - block * lanes
                    if filled < lanes {
                        // The padded lanes of the last block contribute nothing.
                        let live = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .< SIMD8(repeating: Int32(filled))
                        derivative = SIMD8(repeating: 0).replacing(with: derivative, where: live)
                        loss = SIMD8(repeating: 0).replacing(with: loss, where: live)
                    }
                    for j in 0..<d {
                        accumulators[j] +=
                            derivative * base.loadUnaligned(fromByteOffset: j * lanes * stride, as: SIMD8<Float>.self)
                    }
                    biasGradient += derivative
                    lossLanes += loss
                    if block & 63 == 63 {
                        total += Double(lossLanes.sum())
                        lossLanes = .zero
                    }
                }
            }
        }
        total += Double(lossLanes.sum())
        for j in 0..<d { gradient[j] += accumulators[j].sum() }
        gradient[d] += biasGradient.sum()
        return total
    }
}
