import Testing

@testable import ChimeraML

/// The blocked layout and its kernels (the AVX2 pass in C where the CPU has it, the Swift SIMD8 pass)
/// against the row-major kernel: same loss and gradient for every single-output model, at row counts
/// around the eight-row block, standardised or not, on one thread or several.
struct BlockedKernelTests {
    static func data(rows: Int, features: Int, kind: ModelKind, seed: UInt64) -> (Dataset, [Float]) {
        var random = SplitMix64(seed: seed)
        let features2 = (0..<(rows * features)).map { _ in Float.random(in: -3...3, using: &random) }
        let labels = (0..<rows).map { _ in
            kind == .linearRegression
                ? Float.random(in: -2...2, using: &random) : Float(Int.random(in: 0...1, using: &random))
        }
        let weights = (0...features).map { _ in Float.random(in: -1...1, using: &random) }
        return (Dataset(featureNames: (0..<features).map { "f\($0)" }, features: features2, labels: labels), weights)
    }

    static func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-5 * max(1, abs(b)) }

    static func close(_ a: [Float], _ b: [Float]) -> Bool {
        let scale = max(b.map(abs).max() ?? 1, 1e-3)
        return zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 * scale }
    }

    @Test(
        "blocked passes equal the row-major pass",
        arguments: [ModelKind.linearRegression, .logisticRegression, .linearSVM], [1, 7, 8, 9, 517, 3001])
    func matchesRowMajor(kind: ModelKind, rows: Int) {
        let (data, weights) = Self.data(rows: rows, features: 21, kind: kind, seed: UInt64(rows))
        let objective = Objective(kind: kind, features: 21, classes: kind == .linearRegression ? [] : [0, 1])
        var reference = [Float](repeating: 0, count: objective.weightCount)
        let referenceLoss = objective.lossAndGradient(weights: weights, data: data, gradient: &reference)
        let blocked = BlockedRows(data)
        for threads in [1, 3] {
            var gradient = [Float](repeating: 7, count: objective.weightCount)
            let loss = objective.lossAndGradient(weights: weights, rows: blocked, threads: threads, gradient: &gradient)
            #expect(
                Self.close(loss, referenceLoss),
                "\(kind) \(rows) rows, \(threads) threads: loss \(loss) vs \(referenceLoss)")
            #expect(Self.close(gradient, reference), "\(kind) \(rows) rows, \(threads) threads: gradient")
        }
        // The portable Swift pass, whatever this CPU offers.
        var portable = [Float](repeating: 0, count: objective.weightCount)
        let positive: Float = kind == .linearRegression ? 0 : 1
        let summed = BlockedKernel.lossAndGradient(
            kind: kind, positive: positive, weights: weights, rows: blocked, blocks: 0..<blocked.blocks,
            gradient: &portable,
            portable: true)
        #expect(Self.close(summed / Double(rows), referenceLoss))
        #expect(Self.close(portable.map { $0 / Float(rows) }, reference))
    }

    @Test("packing standardises exactly as Standardizer.apply")
    func standardisesWhilePacking() {
        let (data, weights) = Self.data(rows: 45, features: 5, kind: .logisticRegression, seed: 3)
        let standardizer = ColumnMoments(data).standardizer
        let objective = Objective(kind: .logisticRegression, features: 5, classes: [0, 1])
        var reference = [Float](repeating: 0, count: objective.weightCount)
        let referenceLoss = objective.lossAndGradient(
            weights: weights, data: standardizer.apply(to: data), gradient: &reference)
        var gradient = reference
        let loss = objective.lossAndGradient(
            weights: weights, rows: BlockedRows(data, standardizer: standardizer), gradient: &gradient)
        #expect(Self.close(loss, referenceLoss))
        #expect(Self.close(gradient, reference))
    }

    @Test("a split pass is deterministic for a given thread count")
    func deterministicThreads() {
        let (data, weights) = Self.data(rows: 5000, features: 9, kind: .logisticRegression, seed: 11)
        let objective = Objective(kind: .logisticRegression, features: 9, classes: [0, 1])
        let blocked = BlockedRows(data)
        var first = [Float](repeating: 0, count: objective.weightCount)
        var second = first
        let a = objective.lossAndGradient(weights: weights, rows: blocked, threads: 4, gradient: &first)
        let b = objective.lossAndGradient(weights: weights, rows: blocked, threads: 4, gradient: &second)
        #expect(a == b)
        #expect(first == second)
    }
}
