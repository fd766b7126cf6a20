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
    private var optimizer: SGDOptimizer
    private let regularizer: Regularizer

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

    private var roundSum: [Float]
    private var roundRows = 0
    private var roundLoss = 0.0
    private var latestLoss: [UInt32: Double] = [:]
    /// The iteration each worker was last allowed to start (its push must carry it).
    private var started: [UInt32: Int] = [:]

    public init(configuration: TrainingConfiguration, objective: Objective, initialWeights: [Float]? = nil) {
        precondition(initialWeights.map { $0.count == objective.weightCount } ?? true, "initial weights size")
        self.configuration = configuration
        self.objective = objective
        weights = initialWeights ?? [Float](repeating: 0, count: objective.weightCount)
        barrier = SSPBarrier(staleness: configuration.staleness)
        optimizer = SGDOptimizer(configuration, weightCount: objective.weightCount)
        regularizer = Regularizer(configuration)
        roundSum = [Float](repeating: 0, count: objective.weightCount)
    }

    private var isBSP: Bool { configuration.staleness == 0 }

    /// A worker (new or returning) joins at the current minimum clock. Returns its starting iteration.
    public mutating func join(_ worker: UInt32, rows: Int) -> Int {
        self.rows[worker] = rows
        started[worker] = nil
        return barrier.join(worker, clock: barrier.minClock ?? completedIterations)
    }

    public func clock(of worker: UInt32) -> Int? { barrier.clocks[worker] }

    /// A worker asks to start iteration `clock`. Answered now, or later through another event's replies.
    public mutating func requestStart(_ worker: UInt32, clock: Int) -> [Reply] {
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
        guard let current = barrier.clocks[worker] else { return (.rejected("worker \(worker) is not live"), []) }
        guard started[worker] == clock, current == clock else {
            rejectedUpdates += 1
            return (.rejected("update for iteration \(clock), but worker \(worker) is at iteration \(current)"), [])
        }
        guard loss.isFinite else {
            rejectedUpdates += 1
            return (.rejected("loss is not finite"), [])
        }
        started[worker] = nil
        let weight = max(pushedRows, 1)
        if isBSP {
            addUpdate(&roundSum, Float(weight))
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
        rows[worker] = nil
        started[worker] = nil
        latestLoss[worker] = nil
        let released = barrier.leave(worker)
        return settle(released: released)
    }

    /// Ends the job now (cancel, or all iterations done): every parked request gets `done`.
    public mutating func finish() -> [Reply] {
        isDone = true
        return barrier.drainParked().map { .weights(worker: $0, done: true) }
    }

    public var currentLoss: Double? { lossHistory.last }

    // MARK: Internals

    private mutating func noteStart(_ worker: UInt32, clock: Int) {
        started[worker] = clock
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
            if minimum > completedIterations, roundRows > 0 {
                applyRound()
            }
        } else {
            completedIterations = max(completedIterations, minimum)
        }
        if completedIterations >= configuration.maxIterations || converged() {
            return released.map { .weights(worker: $0, done: true) } + finish()
        }
        return (released + barrier.releaseAll()).map { worker in
            noteStart(worker, clock: barrier.clocks[worker] ?? 0)
            return .weights(worker: worker, done: false)
        }
    }

    private mutating func applyRound() {
        let scale = 1 / Float(roundRows)
        var gradient = roundSum
        for i in gradient.indices { gradient[i] *= scale }
        var loss = roundLoss / Double(roundRows)
        if configuration.workerMode == .localSGD {
            // Deltas: the rows-weighted mean delta is the new step.
            for i in weights.indices { weights[i] += gradient[i] }
        } else {
            loss += regularizer.apply(weights: weights, stride: objective.stride, gradient: &gradient)
            optimizer.step(weights: &weights, gradient: gradient)
        }
        lossHistory.append(loss)
        version += 1
        completedIterations += 1
        for i in roundSum.indices { roundSum[i] = 0 }
        roundRows = 0
        roundLoss = 0
    }

    private mutating func applyImmediate(
        _ worker: UInt32, clock: Int, rows: Int, loss: Double, addUpdate: (inout [Float], Float) -> Void
    ) {
        let totalRows = max(self.rows.values.reduce(0, +), rows)
        let share = Float(rows) / Float(totalRows)
        if configuration.workerMode == .localSGD {
            addUpdate(&weights, share)
        } else {
            var gradient = [Float](repeating: 0, count: weights.count)
            addUpdate(&gradient, 1)
            _ = regularizer.apply(weights: weights, stride: objective.stride, gradient: &gradient)
            let eta = Float(optimizer.learningRate.rate(at: clock + 1)) * share
            for i in weights.indices { weights[i] -= eta * gradient[i] }
        }
        version += 1
        latestLoss[worker] = loss
        let live = latestLoss.filter { self.rows[$0.key] != nil }
        let liveRows = live.keys.reduce(0) { $0 + (self.rows[$1] ?? 0) }
        if liveRows > 0, clock + 1 > lossHistory.count {
            lossHistory.append(live.reduce(0) { $0 + $1.value * Double(self.rows[$1.key] ?? 0) } / Double(liveRows))
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
