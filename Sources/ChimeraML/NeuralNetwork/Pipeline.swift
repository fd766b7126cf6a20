/// How a fit spreads its work: every worker a whole model on its own rows (`data`), a linear model's
/// columns split over workers holding every row (`features`), or the layers of one network split over
/// workers that pass activations on (`pipeline`; with replicas, hybrid).
public enum Parallelism: String, Sendable, Codable, CaseIterable {
    case data, features, pipeline
}

/// The order in which a pipeline stage runs its micro-batches' passes.
public enum PipelineSchedule: String, Sendable, Codable, CaseIterable {
    /// Every forward pass, then every backward pass (Huang et al., GPipe, 2019): M micro-batches of
    /// activations held per stage.
    case gpipe
    /// One forward, one backward after a warm-up of K − 1 − s forwards (Narayanan et al., PipeDream,
    /// 2019; Fan et al., DAPPLE, 2021): at most K − s micro-batches held by stage s.
    case oneFOneB = "1f1b"

    /// One pass of a micro-batch.
    public enum Step: Equatable, Sendable {
        case forward(Int)
        case backward(Int)
    }

    /// Stage `stage`'s passes, in order, for one iteration of `microBatches` micro-batches over `stages`
    /// stages. Both orders are deadlock-free when every stage buffers the messages it does not need yet.
    public func steps(stage: Int, stages: Int, microBatches: Int) -> [Step] {
        precondition(stage >= 0 && stage < stages && microBatches >= 1)
        switch self {
        case .gpipe:
            return (0..<microBatches).map { .forward($0) } + (0..<microBatches).map { .backward($0) }
        case .oneFOneB:
            let warmUp = min(stages - 1 - stage, microBatches)
            var steps: [Step] = (0..<warmUp).map { .forward($0) }
            for index in 0..<(microBatches - warmUp) {
                steps.append(.forward(warmUp + index))
                steps.append(.backward(index))
            }
            steps += ((microBatches - warmUp)..<microBatches).map { .backward($0) }
            return steps
        }
    }

    /// The most micro-batches whose activations a stage holds at once under `steps`.
    public static func peakHeld(_ steps: [Step]) -> Int {
        var held = 0
        var peak = 0
        for step in steps {
            if case .forward = step { held += 1 } else { held -= 1 }
            peak = max(peak, held)
        }
        return peak
    }
}

/// The layers of a network split into K contiguous stages.
public struct PipelinePlan: Sendable, Equatable {
    /// Each stage's layers (indices into the network's layers, 0 = the first weight layer).
    public let stages: [Range<Int>]

    /// `layersPerStage` empty: balanced by parameters (the products' work is proportional to them),
    /// minimising the largest stage. Otherwise each stage's layer count, input side first.
    public init(network: MLP, stages: Int, layersPerStage: [Int] = []) throws(InvalidSetting) {
        let layers = network.layers
        if !layersPerStage.isEmpty {
            guard layersPerStage.allSatisfy({ $0 >= 1 }) else {
                throw InvalidSetting("stage_layers \(Self.list(layersPerStage)): every stage needs at least one layer")
            }
            guard layersPerStage.reduce(0, +) == layers else {
                throw InvalidSetting(
                    "stage_layers \(Self.list(layersPerStage)) covers \(layersPerStage.reduce(0, +)) layers; the network \(network.summary) has \(layers) (hidden layers and the output layer)"
                )
            }
            guard stages == 0 || stages == layersPerStage.count else {
                throw InvalidSetting(
                    "stages \(stages) but stage_layers \(Self.list(layersPerStage)) has \(layersPerStage.count) entries"
                )
            }
            var start = 0
            self.stages = layersPerStage.map { count in
                defer { start += count }
                return start..<(start + count)
            }
            return
        }
        guard stages >= 1 else { throw InvalidSetting("a pipeline needs at least one stage") }
        guard stages <= layers else {
            throw InvalidSetting(
                "\(stages) stages but the network \(network.summary) has only \(layers) layers (hidden layers and the output layer): use at most \(layers) stages or more hidden layers"
            )
        }
        let cost = (0..<layers).map { network.parameterRange(layers: $0..<($0 + 1)).count }
        self.stages = Self.balanced(cost: cost, parts: stages)
    }

    /// Contiguous parts minimising the largest part's cost (dynamic programming: a network has few layers).
    static func balanced(cost: [Int], parts: Int) -> [Range<Int>] {
        let n = cost.count
        var prefix = [0]
        for value in cost { prefix.append(prefix.last! + value) }
        // best[k][i]: the smallest largest part splitting the first i layers into k parts.
        var best = [[Int]](repeating: [Int](repeating: .max, count: n + 1), count: parts + 1)
        var cut = [[Int]](repeating: [Int](repeating: 0, count: n + 1), count: parts + 1)
        best[0][0] = 0
        for k in 1...parts {
            for i in k...n {
                for j in (k - 1)..<i where best[k - 1][j] != .max {
                    let worst = max(best[k - 1][j], prefix[i] - prefix[j])
                    if worst < best[k][i] {
                        best[k][i] = worst
                        cut[k][i] = j
                    }
                }
            }
        }
        var ranges: [Range<Int>] = []
        var end = n
        for k in stride(from: parts, through: 1, by: -1) {
            let start = cut[k][end]
            ranges.insert(start..<end, at: 0)
            end = start
        }
        return ranges
    }

    /// "2,1,1": how many layers each stage has.
    public var layerCounts: String { Self.list(stages.map(\.count)) }

    static func list(_ values: [Int]) -> String { values.map(String.init).joined(separator: ",") }
}

/// A batch's rows split into `parts` micro-batches as even as can be (the first ones one row larger).
public func microBatchRanges(rows: Int, parts: Int) -> [Range<Int>] {
    let parts = max(1, min(parts, rows))
    var ranges: [Range<Int>] = []
    var start = 0
    for index in 0..<parts {
        let size = rows / parts + (index < rows % parts ? 1 : 0)
        ranges.append(start..<(start + size))
        start += size
    }
    return ranges
}

/// One pipeline stage's computation over an iteration's micro-batches: the passes it holds between
/// a micro-batch's forward and backward, and its slice of the gradient, summed over micro-batches.
/// No I/O: the worker moves the tensors, tests run the stages in one process.
public struct StageComputation {
    public let network: MLP
    public let layers: Range<Int>
    /// The stage's slice of the flat parameter vector.
    public let parameters: Range<Int>
    /// The gradient of the iteration so far (the slice), summed over its micro-batches.
    public private(set) var gradient: [Float]
    /// Micro-batches forwarded and not yet back-propagated: their passes and inputs.
    private var held: [Int: (pass: Pass, input: [Float])] = [:]

    public init(network: MLP, layers: Range<Int>) {
        self.network = network
        self.layers = layers
        parameters = network.parameterRange(layers: layers)
        gradient = [Float](repeating: 0, count: parameters.count)
    }

    public var isFirst: Bool { layers.lowerBound == 0 }
    public var isLast: Bool { layers.upperBound == network.layers }
    public var inputWidth: Int { network.layerSizes[layers.lowerBound] }
    public var outputWidth: Int { network.layerSizes[layers.upperBound] }
    public var heldMicroBatches: Int { held.count }
    /// Bytes of activations and inputs held now.
    public var heldBytes: Int { held.values.reduce(0) { $0 + ($1.pass.heldFloats + $1.input.count) * 4 } }

    /// A new iteration: the gradient starts from zero.
    public mutating func begin() {
        held.removeAll()
        for index in gradient.indices { gradient[index] = 0 }
    }

    /// Runs micro-batch `micro` forward on `input` ([rows × inputWidth]); returns the activations for
    /// the next stage ([rows × outputWidth]), or nil on the last stage (its backward needs the labels).
    public mutating func forward(micro: Int, input: [Float], rows: Int, weights: UnsafePointer<Float>) -> [Float]? {
        precondition(input.count == rows * inputWidth, "stage input size")
        var pass = Pass(network, rows: rows, layers: layers)
        input.withUnsafeBufferPointer { pass.forward(weights: weights, input: $0.baseAddress!) }
        let output = isLast ? nil : pass.withOutput { Array($0) }
        held[micro] = (pass, input)
        return output
    }

    /// The last stage: the micro-batch's loss (its rows' losses × `scale`, 1 / the batch's rows) and
    /// its backward pass; returns the loss and the gradient for the stage below (nil on stage 0).
    public mutating func backward(
        micro: Int, labels: UnsafeBufferPointer<Float>, scale: Float, weights: UnsafePointer<Float>
    )
        -> (loss: Double, inputGradient: [Float]?)
    {
        guard var entry = held.removeValue(forKey: micro) else { preconditionFailure("backward before forward") }
        let loss = entry.pass.outputDelta(labels: labels, scale: scale)
        return (loss, propagate(&entry, weights: weights))
    }

    /// A stage below the last: back-propagates the gradient of its output activations (from the stage
    /// above); returns the gradient for the stage below (nil on stage 0).
    public mutating func backward(micro: Int, upstream: [Float], weights: UnsafePointer<Float>) -> [Float]? {
        guard var entry = held.removeValue(forKey: micro) else { preconditionFailure("backward before forward") }
        precondition(upstream.count == entry.pass.rows * outputWidth, "upstream gradient size")
        upstream.withUnsafeBufferPointer { entry.pass.outputGradient($0.baseAddress!) }
        return propagate(&entry, weights: weights)
    }

    public func holds(_ micro: Int) -> Bool { held[micro] != nil }

    private mutating func propagate(_ entry: inout (pass: Pass, input: [Float]), weights: UnsafePointer<Float>)
        -> [Float]?
    {
        var below = isFirst ? nil : [Float](repeating: 0, count: entry.pass.rows * inputWidth)
        var pass = entry.pass
        let input = entry.input
        input.withUnsafeBufferPointer { x in
            gradient.withUnsafeMutableBufferPointer { g in
                if below == nil {
                    pass.backward(
                        weights: weights, input: x.baseAddress!, gradient: g.baseAddress!, accumulate: true,
                        inputGradient: nil)
                } else {
                    below!.withUnsafeMutableBufferPointer {
                        pass.backward(
                            weights: weights, input: x.baseAddress!, gradient: g.baseAddress!, accumulate: true,
                            inputGradient: $0.baseAddress!)
                    }
                }
            }
        }
        return below
    }
}
