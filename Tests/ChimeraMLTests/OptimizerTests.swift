import ChimeraML
import Foundation
import Testing

/// The master's update rules against their formulas, step by step.
@Suite("Optimizers")
struct OptimizerTests {
    static func configuration(
        _ kind: OptimizerKind, eta: Double = 0.1, momentum: Double = 0, decay: Double = 0, warmup: Int = 0
    )
        -> TrainingConfiguration
    {
        var c = TrainingConfiguration()
        c.optimizer = kind
        c.eta0 = eta
        c.momentum = momentum
        c.weightDecay = decay
        c.warmupSteps = warmup
        return c
    }

    @Test("sgd with momentum and nesterov follow their formulas over three steps")
    func momentum() {
        let gradients: [[Float]] = [[1, -2], [0.5, 0.5], [-1, 0]]
        for kind in [OptimizerKind.sgd, .nesterov] {
            var optimizer = Optimizer(Self.configuration(kind, momentum: 0.9), weightCount: 2)
            var weights: [Float] = [0, 0]
            var velocity: [Double] = [0, 0]
            var expected: [Double] = [0, 0]
            for g in gradients {
                optimizer.step(weights: &weights, gradient: g)
                for i in 0..<2 {
                    velocity[i] = 0.9 * velocity[i] + Double(g[i])
                    expected[i] -= 0.1 * (kind == .nesterov ? Double(g[i]) + 0.9 * velocity[i] : velocity[i])
                }
            }
            #expect(
                zip(weights, expected).allSatisfy { abs(Double($0) - $1) < 1e-6 }, "\(kind): \(weights) vs \(expected)")
        }
    }

    @Test("adam's first step is η·sign(g); later steps follow the bias-corrected moments")
    func adam() {
        var optimizer = Optimizer(Self.configuration(.adam, eta: 0.01), weightCount: 3)
        var weights: [Float] = [1, 1, 1]
        optimizer.step(weights: &weights, gradient: [4, -0.001, 0])
        #expect(abs(weights[0] - 0.99) < 1e-6 && abs(weights[1] - 1.01) < 1e-5 && weights[2] == 1)
        // A second step by the formula, in double precision.
        optimizer.step(weights: &weights, gradient: [2, 0, 0])
        let m = 0.9 * (0.1 * 4) + 0.1 * 2
        let s = 0.999 * (0.001 * 16) + 0.001 * 4
        let expected = 0.99 - 0.01 * (m / (1 - 0.81)) / ((s / (1 - 0.999 * 0.999)).squareRoot() + 1e-8)
        #expect(abs(Double(weights[0]) - expected) < 1e-6, "\(weights[0]) vs \(expected)")
    }

    @Test("adamw decays weights apart from the gradient; sgd's weight decay is part of the gradient")
    func weightDecay() {
        var adamw = Optimizer(Self.configuration(.adamw, eta: 0.1, decay: 0.5), weightCount: 1)
        var w: [Float] = [2]
        adamw.step(weights: &w, gradient: [0])
        #expect(abs(w[0] - (2 - 0.1 * 0.5 * 2)) < 1e-6)
        var sgd = Optimizer(Self.configuration(.sgd, eta: 0.1, decay: 0.5), weightCount: 1)
        var v: [Float] = [2]
        sgd.step(weights: &v, gradient: [1])
        #expect(abs(v[0] - (2 - 0.1 * (1 + 0.5 * 2))) < 1e-6)
    }

    @Test("warm-up ramps the step linearly, then the schedule's rate applies")
    func warmup() {
        let optimizer = Optimizer(Self.configuration(.sgd, eta: 0.2, warmup: 4), weightCount: 1)
        #expect((1...6).map { optimizer.rate(at: $0) } == [0.05, 0.1, 0.15000000000000002, 0.2, 0.2, 0.2])
    }

    @Test("a run restored from a checkpoint's state goes on exactly as the uninterrupted one")
    func resume() throws {
        let configuration = Self.configuration(.adam, eta: 0.05)
        var whole = Optimizer(configuration, weightCount: 2)
        var a: [Float] = [0.5, -0.5]
        let gradients: [[Float]] = (0..<6).map { [Float($0) - 2, 1 / Float($0 + 1)] }
        for g in gradients { whole.step(weights: &a, gradient: g) }
        var first = Optimizer(configuration, weightCount: 2)
        var b: [Float] = [0.5, -0.5]
        for g in gradients.prefix(3) { first.step(weights: &b, gradient: g) }
        // Through JSON, as the checkpoint file carries it.
        let saved = try JSONDecoder().decode(OptimizerState.self, from: JSONEncoder().encode(first.state))
        var second = Optimizer(configuration, weightCount: 2)
        second.restore(saved)
        for g in gradients.dropFirst(3) { second.step(weights: &b, gradient: g) }
        #expect(a == b && second.steps == 6)
    }
}
