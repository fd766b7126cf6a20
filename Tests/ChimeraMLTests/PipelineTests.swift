import ChimeraML
import Testing

/// Pipeline stages in one process: K stages and M micro-batches give the whole batch's gradient.
@Suite("Pipeline stages")
struct PipelineTests {
    static func network(head: OutputHead, activation: Activation = .relu) throws -> MLP {
        try MLP(inputs: 5, hidden: [7, 6, 4], activation: activation, head: head)
    }

    static func batch(rows: Int, head: OutputHead) -> (x: [Float], y: [Float]) {
        var random = SplitMix64(seed: 9)
        let x = (0..<(rows * 5)).map { _ in Float(Double(random.next() % 2000) / 1000 - 1) }
        let y = (0..<rows).map { row -> Float in
            switch head {
            case .softmax(let classes): Float(row % classes)
            case .logistic: Float(row % 2)
            case .linear: Float(row) / 10 - 1
            }
        }
        return (x, y)
    }

    /// Runs every stage's passes in its schedule's order, moving tensors through queues in memory.
    static func run(
        _ network: MLP, plan: PipelinePlan, schedule: PipelineSchedule, microBatches: Int, weights: [Float],
        x: [Float], y: [Float]
    ) -> (loss: Double, gradient: [Float], peak: [Int]) {
        let rows = y.count
        let parts = microBatchRanges(rows: rows, parts: microBatches)
        let stages = plan.stages.count
        var computations = plan.stages.map { StageComputation(network: network, layers: $0) }
        var steps = (0..<stages).map {
            schedule.steps(stage: $0, stages: stages, microBatches: parts.count)[...]
        }
        var activations = [[Int: [Float]]](repeating: [:], count: stages)  // into stage s
        var gradients = [[Int: [Float]]](repeating: [:], count: stages)
        var loss = 0.0
        var peak = [Int](repeating: 0, count: stages)
        // Round-robin over the stages: each runs its next step once that step's input has arrived.
        while steps.contains(where: { !$0.isEmpty }) {
            var progressed = false
            for s in 0..<stages {
                guard let step = steps[s].first else { continue }
                let slice = Array(weights[computations[s].parameters])
                switch step {
                case .forward(let m):
                    let input =
                        s == 0 ? Array(x[(parts[m].lowerBound * 5)..<(parts[m].upperBound * 5)]) : activations[s][m]
                    guard let input else { continue }
                    activations[s][m] = nil
                    let out = slice.withUnsafeBufferPointer {
                        computations[s].forward(micro: m, input: input, rows: parts[m].count, weights: $0.baseAddress!)
                    }
                    if let out { activations[s + 1][m] = out }
                    peak[s] = max(peak[s], computations[s].heldMicroBatches)
                case .backward(let m):
                    var below: [Float]?
                    if s == stages - 1 {
                        let labels = Array(y[parts[m]])
                        let result = slice.withUnsafeBufferPointer { w in
                            labels.withUnsafeBufferPointer {
                                computations[s].backward(
                                    micro: m, labels: $0, scale: 1 / Float(rows), weights: w.baseAddress!)
                            }
                        }
                        loss += result.loss
                        below = result.inputGradient
                    } else {
                        guard let upstream = gradients[s][m] else { continue }
                        gradients[s][m] = nil
                        below = slice.withUnsafeBufferPointer {
                            computations[s].backward(micro: m, upstream: upstream, weights: $0.baseAddress!)
                        }
                    }
                    if let below { gradients[s - 1][m] = below }
                }
                steps[s].removeFirst()
                progressed = true
            }
            precondition(progressed, "the schedule deadlocked")
        }
        return (loss, computations.flatMap(\.gradient), peak)
    }

    @Test(
        "K stages and M micro-batches equal the whole batch's loss and gradient",
        arguments: [1, 2, 4], [PipelineSchedule.gpipe, .oneFOneB])
    func equalsWholeBatch(stages: Int, schedule: PipelineSchedule) throws {
        for (head, activation) in [
            (OutputHead.softmax(classes: 3), Activation.relu), (.logistic, .tanh), (.linear, .relu),
        ] {
            let network = try Self.network(head: head, activation: activation)
            let weights = network.initialWeights(seed: 3)
            let (x, y) = Self.batch(rows: 23, head: head)
            var reference = [Float](repeating: 0, count: network.parameterCount)
            let expected = x.withUnsafeBufferPointer { xs in
                y.withUnsafeBufferPointer {
                    network.lossAndGradient(weights: weights, x: xs, labels: $0, rows: 23, gradient: &reference)
                }
            }
            for microBatches in [1, 4, 8] {
                let plan = try PipelinePlan(network: network, stages: stages)
                let (loss, gradient, peak) = Self.run(
                    network, plan: plan, schedule: schedule, microBatches: microBatches, weights: weights, x: x, y: y)
                #expect(abs(loss - expected) < 1e-5)
                #expect(gradient.count == reference.count)
                let worst = zip(gradient, reference).map { abs($0 - $1) }.max() ?? 0
                #expect(worst < 1e-5, "K \(stages) M \(microBatches) \(schedule): largest difference \(worst)")
                for (stage, held) in peak.enumerated() {
                    switch schedule {
                    case .gpipe: #expect(held == microBatches)
                    case .oneFOneB: #expect(held <= min(stages - stage, microBatches))
                    }
                }
            }
        }
    }

    @Test("Each stage runs every micro-batch's forward before its backward, once")
    func scheduleOrders() {
        for schedule in PipelineSchedule.allCases {
            for stages in 1...5 {
                for microBatches in 1...9 {
                    for stage in 0..<stages {
                        let steps = schedule.steps(stage: stage, stages: stages, microBatches: microBatches)
                        #expect(steps.count == 2 * microBatches)
                        for m in 0..<microBatches {
                            let f = steps.firstIndex(of: .forward(m))
                            let b = steps.firstIndex(of: .backward(m))
                            #expect(f != nil && b != nil && f! < b!)
                        }
                        let peak = PipelineSchedule.peakHeld(steps)
                        #expect(peak <= (schedule == .gpipe ? microBatches : min(stages - stage, microBatches)))
                    }
                }
            }
        }
    }

    @Test("Stages balanced by parameters, or as the user gives them; impossible splits named")
    func plans() throws {
        let network = try MLP(
            inputs: 64, hidden: [1024, 1024, 1024, 1024], activation: .relu, head: .softmax(classes: 10))
        // Layers of 66k, 1.05M, 1.05M, 1.05M, 10k parameters: the big middle layers each get a stage.
        let four = try PipelinePlan(network: network, stages: 4)
        #expect(four.stages.map(\.count).reduce(0, +) == 5)
        #expect(four.stages.first == 0..<2 || four.stages.last == 3..<5)
        #expect(try PipelinePlan(network: network, stages: 1).stages == [0..<5])
        #expect(
            try PipelinePlan(network: network, stages: 0, layersPerStage: [2, 1, 2]).stages == [0..<2, 2..<3, 3..<5])
        #expect(throws: InvalidSetting.self) { try PipelinePlan(network: network, stages: 6) }
        #expect(throws: InvalidSetting.self) { try PipelinePlan(network: network, stages: 0, layersPerStage: [2, 2]) }
        #expect(throws: InvalidSetting.self) {
            try PipelinePlan(network: network, stages: 2, layersPerStage: [2, 2, 1])
        }
        #expect(microBatchRanges(rows: 10, parts: 4) == [0..<3, 3..<6, 6..<8, 8..<10])
        #expect(microBatchRanges(rows: 2, parts: 4) == [0..<1, 1..<2])
    }
}
