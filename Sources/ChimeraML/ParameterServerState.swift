/// The master's side of one parameter-server job, as a pure state machine: it takes worker events
/// (start requests, updates, deaths, joins) and returns what to answer. The event loop owns the sockets.
///
/// `s = 0` (BSP): the round's updates are summed, weighted by rows, and applied once when every live
/// worker has pushed, so N workers equal full-batch gradient descent on the union of their shards.
/// `s > 0` or unbounded (SSP): each update is applied as it arrives, scaled by the worker's share of rows.
public struct ParameterServerState: Sendable {
    public enum Reply: Equatable, Sendable {
        /// Answer the worker's parked or immediate start request with the current weights.
        case weights(worker: UInt32, done: Bool)
    }

    public enum PushOutcome: Equatable, Sendable {
        case accepted
        case rejected(String)
    }

    public let configuration: TrainingConfiguration
    public let objective: Objective
    public private(set) var weights: [Float]
    public private(set) var barrier: SSPBarrier
    private var optimizer: Optimizer
    private let regularizer: Regularizer
    /// BMUF's block filter (the base model and its block momentum).
    private var blockFilter: BlockFilter?
    /// The workers keep and step the weights (pipeline stages owning their slices), or parameter
    /// servers do (sharded jobs): a round only records its loss; the weights change through
    /// `replaceWeights`.
    public private(set) var weightsOnWorkers = false
    /// A parameter server's copy of one key range (`init(replicaOf:)`): it replays the coordinator's
    /// events, steps its range, and takes every decision (barrier, divergence, end) from the losses
    /// alone, as the coordinator does, so that every copy decides the same.
    public let replicaRange: Range<Int>?
    /// The coordinator records every event for its replicas (`takeEvents`).
    public private(set) var recordsEvents = false
    private var events: [ReplicaEvent] = []
    /// The penalised weights among those this state steps (the range's, for a replica).
    private let penalized: [Range<Int>]
    /// Updates applied when each worker started its current iteration: its push's staleness τ is
    /// `version` then less this (for the staleness-aware step).
    private var startedVersion: [UInt32: Int] = [:]

    /// Rows per live worker (for weighting).
    public private(set) var rows: [UInt32: Int] = [:]
    /// Iterations whose update has been applied (BSP rounds, or the minimum clock under SSP).
    public private(set) var completedIterations = 0
    /// Updates applied (a BSP round counts once).
    public private(set) var version = 0
    public private(set) var lossHistory: [Double] = []
    /// [k] = how many starts happened k iterations ahead of the slowest live worker.
    public private(set) var stalenessHistogram: [Int] = []
    public private(set) var isDone = false
    public private(set) var rejectedUpdates = 0

    /// Why the fit diverged, when it ended that way (the job then fails with this text).
    public private(set) var divergence: Divergence?
    /// The divergences answered by going back to the best weights with half the step.
    public private(set) var backoffs: [Divergence] = []
    /// The step's multiplier: halved at every backoff.
    public private(set) var stepScale = 1.0

    private var roundSum: [Float]
    private var roundRows = 0
    private var roundLoss = 0.0
    /// A push of this BSP round that could not be used (non-finite loss): the round is not applied.
    private var roundPoisoned: Divergence?
    /// The lowest loss seen and the weights it was measured on: where a backoff goes back to, and
    /// what a diverged fit keeps.
    private var best: (loss: Double, weights: [Float])?
    /// Backoffs taken when each worker started its current iteration: an update computed on weights
    /// from before a backoff is dropped, not applied to the restored ones.
    private var startedEpoch: [UInt32: Int] = [:]
    /// Updates in a row whose loss was above `risingFactor` × the first.
    private var risingCount = 0
    /// Losses recorded before the last backoff: the window looks only at those after it.
    private var lossesBeforeBackoff = 0
    private var latestLoss: [UInt32: Double] = [:]
    /// The iteration each worker was last allowed to start (its push must carry it).
    private var started: [UInt32: Int] = [:]

    /// `startIteration`: resuming a job from a checkpoint taken after that many iterations (the
    /// workers join at it and the schedule goes on from it).
    /// The optimizer's moments and step count (saved in checkpoints).
    public var optimizerState: OptimizerState {
        var state = optimizer.state
        state.block = blockFilter
        return state
    }

    public init(
        configuration: TrainingConfiguration, objective: Objective, initialWeights: [Float]? = nil,
        startIteration: Int = 0, optimizerState: OptimizerState? = nil
    ) {
        self.init(
            configuration: configuration, objective: objective, range: nil,
            initialWeights: initialWeights ?? objective.initialWeights(seed: configuration.seed),
            startIteration: startIteration, optimizerState: optimizerState)
    }

    /// A parameter server's copy of `range` of the weights (`initialWeights` are the range's, and
    /// `optimizerState` its slice): fed the coordinator's events through `replay`, it steps the range
    /// as the whole state would have stepped it.
    public init(
        replicaOf configuration: TrainingConfiguration, objective: Objective, range: Range<Int>,
        initialWeights: [Float], startIteration: Int = 0, optimizerState: OptimizerState? = nil
    ) {
        self.init(
            configuration: configuration, objective: objective, range: range, initialWeights: initialWeights,
            startIteration: startIteration, optimizerState: optimizerState)
    }

    private init(
        configuration: TrainingConfiguration, objective: Objective, range: Range<Int>?, initialWeights: [Float],
        startIteration: Int, optimizerState: OptimizerState?
    ) {
        let count = range?.count ?? objective.weightCount
        precondition(initialWeights.count == count, "initial weights size")
        self.configuration = configuration
        self.objective = objective
        replicaRange = range
        penalized =
            range.map { range in
                objective.penalized.compactMap { part in
                    let clipped = part.clamped(to: range)
                    return clipped.isEmpty
                        ? nil : (clipped.lowerBound - range.lowerBound)..<(clipped.upperBound - range.lowerBound)
                }
            } ?? objective.penalized
        weights = initialWeights
        barrier = SSPBarrier(staleness: configuration.staleness)
        optimizer = Optimizer(configuration, weightCount: count)
        optimizer.restore(steps: startIteration)
        if let optimizerState { optimizer.restore(optimizerState) }
        if configuration.algorithm == .bmuf {
            blockFilter =
                optimizerState?.block
                ?? BlockFilter(
                    momentum: configuration.blockMomentum, learningRate: configuration.blockLearningRate,
                    start: weights)
        }
        completedIterations = startIteration
        regularizer = Regularizer(configuration)
        roundSum = [Float](repeating: 0, count: count)
    }

    private var isBSP: Bool { configuration.staleness == 0 }

    /// From now on the workers step the weights (see `weightsOnWorkers`).
    public mutating func keepWeightsOnWorkers() { weightsOnWorkers = true }

    /// From now on parameter servers keep and step the weights: this state decides from the losses
    /// and records every event for their replicas.
    public mutating func coordinateReplicas() {
        weightsOnWorkers = true
        recordsEvents = true
    }

    /// The events since the last call, in order (a coordinator's; empty otherwise).
    public mutating func takeEvents() -> [ReplicaEvent] {
        defer { events.removeAll(keepingCapacity: true) }
        return events
    }

    /// A replica applies one of its coordinator's events; for a push, `addUpdate` adds `scale ×` the
    /// worker's pushed range into its argument.
    public mutating func replay(_ event: ReplicaEvent, addUpdate: (inout [Float], Float) -> Void) {
        switch event {
        case .join(let worker, let rows): _ = join(worker, rows: rows)
        case .start(let worker, let clock): _ = requestStart(worker, clock: clock)
        case .push(let worker, let clock, let rows, let loss):
            _ = push(worker, clock: clock, rows: rows, loss: loss, addUpdate: addUpdate)
        case .leave(let worker): _ = leave(worker)
        case .finish: _ = finish()
        }
    }

    private mutating func record(_ event: ReplicaEvent) {
        if recordsEvents { events.append(event) }
    }

    /// Writes a worker's copy of `range` of the weights (for checkpoints and the model).
    public mutating func replaceWeights(in range: Range<Int>, _ write: (UnsafeMutableBufferPointer<Float>) -> Void) {
        weights.withUnsafeMutableBufferPointer { write(UnsafeMutableBufferPointer(rebasing: $0[range])) }
    }

    /// A worker (new or returning) joins at the current minimum clock. Returns its starting iteration.
    public mutating func join(_ worker: UInt32, rows: Int) -> Int {
        record(.join(worker: worker, rows: rows))
        self.rows[worker] = rows
        started[worker] = nil
        return barrier.join(worker, clock: barrier.minClock ?? completedIterations)
    }

    public func clock(of worker: UInt32) -> Int? { barrier.clocks[worker] }

    /// A worker asks to start iteration `clock`. Answered now, or later through another event's replies.
    public mutating func requestStart(_ worker: UInt32, clock: Int) -> [Reply] {
        record(.start(worker: worker, clock: clock))
        guard barrier.clocks[worker] != nil else { return [] }
        if isDone || clock >= configuration.maxIterations { return [.weights(worker: worker, done: true)] }
        switch barrier.requestStart(worker, clock: clock) {
        case .proceed:
            noteStart(worker, clock: clock)
            return [.weights(worker: worker, done: false)]
        case .park:
            return []
        }
    }

    /// A worker's update for iteration `clock`: the mean gradient (or local-SGD delta) over `rows` rows,
    /// and its mean loss. `addUpdate(into, scale)` adds `scale ×` the update into `into`.
    public mutating func push(
        _ worker: UInt32, clock: Int, rows pushedRows: Int, loss: Double,
        addUpdate: (inout [Float], Float) -> Void
    ) -> (PushOutcome, [Reply]) {
        record(.push(worker: worker, clock: clock, rows: pushedRows, loss: loss))
        guard let current = barrier.clocks[worker] else { return (.rejected("worker \(worker) is not live"), []) }
        guard started[worker] == clock, current == clock else {
            rejectedUpdates += 1
            return (.rejected("update for iteration \(clock), but worker \(worker) is at iteration \(current)"), [])
        }
        started[worker] = nil
        let weight = max(pushedRows, 1)
        // Computed on weights a backoff has since replaced: counted for the barrier, not applied.
        let outdated = startedEpoch.removeValue(forKey: worker).map { $0 != backoffs.count } ?? false
        if outdated {
            // Nothing to apply.
        } else if !loss.isFinite {
            // A worker whose loss or update overflowed says so with a non-finite loss (and no usable update).
            let found = Divergence(
                iteration: clock, loss: loss, firstLoss: lossHistory.first,
                cause: "worker \(worker)'s loss is not finite (\(loss))")
            if isBSP {
                roundPoisoned = roundPoisoned ?? found
            } else {
                diverged(found)
            }
        } else if isBSP {
            // EASGD's moves are summed (each worker pulls the centre by its own move); every other
            // update is averaged, weighted by rows.
            addUpdate(&roundSum, configuration.algorithm == .easgd ? 1 : Float(weight))
            roundRows += weight
            roundLoss += loss * Double(weight)
        } else {
            applyImmediate(worker, clock: clock, rows: weight, loss: loss, addUpdate: addUpdate)
        }
        let released = barrier.pushed(worker)
        return (.accepted, settle(released: released))
    }

    /// A worker died or left: it leaves the barrier; the others may go on.
    public mutating func leave(_ worker: UInt32) -> [Reply] {
        record(.leave(worker: worker))
        rows[worker] = nil
        started[worker] = nil
        startedEpoch[worker] = nil
        startedVersion[worker] = nil
        latestLoss[worker] = nil
        let released = barrier.leave(worker)
        return settle(released: released)
    }

    /// Ends the job now (cancel, or all iterations done): every parked request gets `done`.
    public mutating func finish() -> [Reply] {
        record(.finish)
        return finishNow()
    }

    private mutating func finishNow() -> [Reply] {
        isDone = true
        return barrier.drainParked().map { .weights(worker: $0, done: true) }
    }

    public var currentLoss: Double? { lossHistory.last }

    // MARK: Internals

    private mutating func noteStart(_ worker: UInt32, clock: Int) {
        started[worker] = clock
        startedEpoch[worker] = backoffs.count
        startedVersion[worker] = version
        let ahead = max(0, clock - (barrier.minClock ?? clock))
        if stalenessHistogram.count <= ahead {
            stalenessHistogram += Array(repeating: 0, count: ahead + 1 - stalenessHistogram.count)
        }
        stalenessHistogram[ahead] += 1
    }

    /// Applies finished BSP rounds, detects the end, and answers what may start. `released` are the
    /// requests the barrier already let go in this event; they are answered only after the round is applied.
    private mutating func settle(released: [UInt32]) -> [Reply] {
        let minimum = barrier.minClock ?? completedIterations
        if isBSP {
            if minimum > completedIterations, roundRows > 0 || roundPoisoned != nil {
                applyRound()
            }
        } else {
            completedIterations = max(completedIterations, minimum)
        }
        if divergence == nil, completedIterations >= configuration.maxIterations || converged() {
            checkFinalLoss()
        }
        if divergence != nil || completedIterations >= configuration.maxIterations || converged() {
            return released.map { .weights(worker: $0, done: true) } + finishNow()
        }
        return (released + barrier.releaseAll()).map { worker in
            noteStart(worker, clock: barrier.clocks[worker] ?? 0)
            return .weights(worker: worker, done: false)
        }
    }

    private mutating func applyRound() {
        defer {
            version += 1
            completedIterations += 1
            for i in roundSum.indices { roundSum[i] = 0 }
            roundRows = 0
            roundLoss = 0
            roundPoisoned = nil
        }
        if let poisoned = roundPoisoned { return diverged(poisoned) }
        // The mean update is scale × the round's sum; the sum is used in place (for a million weights
        // every copy or pass over it is a large part of the round).
        let scale = 1 / Float(roundRows)
        var loss = roundLoss / Double(roundRows)
        if weightsOnWorkers {
            // The workers stepped (their losses include their share of the penalty).
            if let explosion = exploding(loss, iteration: completedIterations) { return diverged(explosion) }
            lossHistory.append(loss)
            return
        }
        if configuration.workerMode == .gradient {
            let penalty = regularizer.apply(
                weights: weights, penalized: penalized, gradient: &roundSum, factor: Float(roundRows))
            // A replica's workers added the whole model's penalty to their losses.
            if replicaRange == nil { loss += penalty }
        }
        // The round's loss was measured on the weights as they are before this step.
        if let explosion = exploding(loss, iteration: completedIterations) { return diverged(explosion) }
        noteLoss(loss)
        let step = Float(stepScale)
        var checked = false
        switch configuration.algorithm {
        case .ssgd, .asgd:
            checked = optimizer.step(weights: &weights, gradient: roundSum, scale: stepScale, gradientScale: scale)
        case .ma:
            // Deltas: the rows-weighted mean delta is the new step.
            for i in weights.indices { weights[i] += step * scale * roundSum[i] }
        case .bmuf:
            blockFilter?.apply(averageDelta: roundSum.map { $0 * scale }, served: &weights, scale: step)
        case .easgd:
            // The centre moves by the sum of the workers' elastic moves.
            for i in weights.indices { weights[i] += step * roundSum[i] }
        }
        lossHistory.append(loss)
        // The optimizer saw every new weight as it wrote it.
        if !checked { checkWeights(iteration: completedIterations, loss: loss) }
    }

    // MARK: Divergence

    /// A loss this many times the first one (or one past 1e-3 when the first was smaller) is an
    /// explosion, not noise: SGD that converges never climbs that far above its starting point.
    public static let explosionFactor = 1e3
    /// A loss this many times the first, `risingPatience` updates in a row, is a divergence.
    public static let risingFactor = 10.0
    /// A fit whose last losses (the mean of up to 5) end above this many times its first did not
    /// learn — it diverged slowly, or oscillates at the edge of stability: it ends `failed`.
    public static let finalLossFactor = 2.0

    /// Losses in a row above `risingFactor` × the first that make a divergence: one noisy
    /// mini-batch is not, a fit that stays that far above where it started is.
    public static let risingPatience = 3

    private mutating func exploding(_ loss: Double, iteration: Int) -> Divergence? {
        if !loss.isFinite {
            return Divergence(
                iteration: iteration, loss: loss, firstLoss: lossHistory.first, cause: "the loss is not finite")
        }
        guard let first = lossHistory.first else { return nil }
        let floor = max(first, 1e-3)
        if loss > Self.explosionFactor * floor {
            return Divergence(
                iteration: iteration, loss: loss, firstLoss: first,
                cause: "the loss exploded to \(Divergence.short(loss / first))× its first value")
        }
        risingCount = loss > Self.risingFactor * floor ? risingCount + 1 : 0
        if risingCount >= Self.risingPatience {
            return Divergence(
                iteration: iteration, loss: loss, firstLoss: first,
                cause:
                    "the loss stayed above \(Divergence.short(Self.risingFactor))× its first value for \(Self.risingPatience) updates"
            )
        }
        // Oscillating at the edge of stability: never exploding, never learning. Looked at from the
        // tenth loss on, over the last five (one noisy mini-batch does not move their mean much).
        guard lossHistory.count - lossesBeforeBackoff >= 9 else { return nil }
        let window = lossHistory.suffix(4).reduce(loss, +) / 5
        guard window > Self.finalLossFactor * floor else { return nil }
        return Divergence(
            iteration: iteration, loss: window, firstLoss: first,
            cause:
                "the loss averaged \(Divergence.short(window / first))× its first value over the last 5 updates: it is not learning"
        )
    }

    /// Keeps the weights of the lowest loss so far (measured on the weights as they are now).
    private mutating func noteLoss(_ loss: Double) {
        guard loss.isFinite, loss <= best?.loss ?? .infinity else { return }
        if best == nil {
            best = (loss, weights)
        } else {
            best!.loss = loss
            // In place: no new array per improving round.
            best!.weights.withUnsafeMutableBufferPointer { out in
                weights.withUnsafeBufferPointer { out.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
            }
        }
    }

    /// After an update: weights that overflowed are a divergence (never handed to a worker).
    private mutating func checkWeights(iteration: Int, loss: Double) {
        // A replica decides nothing from its own range: a workers that reads overflowed weights from
        // it reports a non-finite loss, which every copy sees.
        guard replicaRange == nil, !weights.allFinite else { return }
        diverged(
            Divergence(
                iteration: iteration, loss: loss, firstLoss: lossHistory.first,
                cause: "the update overflowed the weights (a weight became infinite or NaN)"))
    }

    private mutating func checkFinalLoss() {
        guard let first = lossHistory.first, lossHistory.count > 1 else { return }
        let tail = lossHistory.suffix(min(5, lossHistory.count - 1))
        let last = tail.reduce(0, +) / Double(tail.count)
        guard last > Self.finalLossFactor * max(first, 1e-3) else { return }
        restoreBest()
        divergence = Divergence(
            iteration: completedIterations, loss: last, firstLoss: first,
            cause:
                "the fit ended with its loss \(Divergence.short(last / first))× the first (mean of the last \(tail.count)): it did not learn",
            hint: hint)
    }

    /// Ends the fit (`fail`), or goes back to the best weights with half the step (`backoff`).
    private mutating func diverged(_ found: Divergence) {
        var found = found
        found.hint = hint
        restoreBest()
        if configuration.onDivergence == .backoff, backoffs.count < configuration.maxBackoffs {
            backoffs.append(found)
            risingCount = 0
            lossesBeforeBackoff = lossHistory.count
            stepScale *= 0.5
            optimizer.resetVelocity()
            blockFilter?.reset(to: weights)
        } else {
            divergence = found
            isDone = true
        }
    }

    /// The weights go back to those of the lowest loss (the initial ones when none was measured).
    private mutating func restoreBest() {
        if let best {
            weights = best.weights
        } else if !weights.allFinite {
            weights = [Float](repeating: 0, count: weights.count)
        }
    }

    /// What to change, for the error a diverged fit ends with.
    private var hint: String {
        let eta = configuration.eta0 * stepScale
        var text: String
        if configuration.schedule == .optimal {
            text =
                "the 'optimal' schedule's first steps are too large for these features: use schedule constant with eta0 ≤ \(Divergence.short(0.1)), or a larger alpha"
        } else {
            text = "learning rate too high for these features: try eta0 ≤ \(Divergence.short(eta / 10))"
        }
        if !configuration.standardize { text += ", or standardised features (drop raw_features)" }
        if configuration.onDivergence == .fail { text += "; on_divergence backoff retries with half the step" }
        return text
    }

    private mutating func applyImmediate(
        _ worker: UInt32, clock: Int, rows: Int, loss: Double, addUpdate: (inout [Float], Float) -> Void
    ) {
        let totalRows = max(self.rows.values.reduce(0, +), rows)
        let share = Float(rows) / Float(totalRows)
        if let explosion = exploding(loss, iteration: clock) { return diverged(explosion) }
        var step = Float(stepScale)
        if configuration.stalenessAware {
            // Updates applied since this worker read the weights: τ, the step divided by it.
            let tau = version - (startedVersion.removeValue(forKey: worker) ?? version)
            step /= Float(max(1, tau))
        }
        if weightsOnWorkers {
            // Stepped elsewhere: only the loss is recorded.
        } else if configuration.algorithm == .easgd {
            addUpdate(&weights, step)
        } else if configuration.workerMode == .localSGD {
            addUpdate(&weights, share * step)
        } else {
            var gradient = [Float](repeating: 0, count: weights.count)
            addUpdate(&gradient, 1)
            _ = regularizer.apply(weights: weights, penalized: penalized, gradient: &gradient)
            if configuration.optimizer == .sgd {
                let eta = Float(optimizer.rate(at: clock + 1)) * share * step
                for i in weights.indices { weights[i] -= eta * gradient[i] }
            } else {
                // Adaptive and Nesterov steps keep their moments per update: each push is one step,
                // weighed by the worker's share of the rows.
                optimizer.step(weights: &weights, gradient: gradient, scale: Double(share * step))
            }
        }
        if !weightsOnWorkers { checkWeights(iteration: clock, loss: loss) }
        version += 1
        latestLoss[worker] = loss
        let live = latestLoss.filter { self.rows[$0.key] != nil }
        let liveRows = live.keys.reduce(0) { $0 + (self.rows[$1] ?? 0) }
        if liveRows > 0, clock + 1 > lossHistory.count {
            let mean = live.reduce(0) { $0 + $1.value * Double(self.rows[$1.key] ?? 0) } / Double(liveRows)
            noteLoss(mean)
            lossHistory.append(mean)
        }
    }

    private func converged() -> Bool {
        let tolerance = configuration.tolerance
        let patience = max(configuration.patience, 1)
        guard tolerance > 0, lossHistory.count > patience else { return false }
        let recent = lossHistory[lossHistory.count - 1]
        let before = lossHistory[lossHistory.count - 1 - patience]
        return before - recent < tolerance
    }
}

/// How a fit diverged: where, with which loss, why, and what to change.
public struct Divergence: Sendable, Equatable, CustomStringConvertible {
    public var iteration: Int
    public var loss: Double
    public var firstLoss: Double?
    public var cause: String
    public var hint = ""

    public var description: String {
        var text = "diverged at iteration \(iteration): \(cause) (loss \(Self.short(loss))"
        if let firstLoss { text += ", first loss \(Self.short(firstLoss))" }
        text += ")"
        if !hint.isEmpty { text += "; \(hint)" }
        return text
    }

    /// Four significant digits, without Foundation.
    static func short(_ value: Double) -> String {
        guard value.isFinite, value != 0 else { return "\(value)" }
        var exponent = 0
        var mantissa = abs(value)
        while mantissa >= 10 { mantissa /= 10; exponent += 1 }
        while mantissa < 1 { mantissa *= 10; exponent -= 1 }
        let sign = value < 0 ? "-" : ""
        if (-3...5).contains(exponent) {
            let scale = LibM.pow(10, Double(3 - exponent))
            let plain = "\((abs(value) * scale).rounded() / scale)"
            return sign + (plain.hasSuffix(".0") ? String(plain.dropLast(2)) : plain)
        }
        let rounded = "\((mantissa * 1000).rounded() / 1000)"
        return sign + (rounded.hasSuffix(".0") ? String(rounded.dropLast(2)) : rounded) + "e\(exponent)"
    }
}

/// What happened to a coordinator's state, in order: its replicas (parameter servers holding key
/// ranges) replay the same events and so take the same decisions.
public enum ReplicaEvent: Equatable, Sendable {
    case join(worker: UInt32, rows: Int)
    case start(worker: UInt32, clock: Int)
    case push(worker: UInt32, clock: Int, rows: Int, loss: Double)
    case leave(worker: UInt32)
    case finish
}
