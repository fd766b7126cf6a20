import ChimeraML
import Testing

/// Sharded parameter servers as pure state machines: a coordinator deciding from the losses and S
/// replicas, each stepping one key range from the coordinator's events, train the same model as one
/// state holding every weight.
@Suite("Parameter-server replicas")
struct ReplicaTests {
    /// One state holding every weight, or a coordinator and its replicas, behind the same calls.
    struct Servers {
        var whole: ParameterServerState?
        var coordinator: ParameterServerState?
        var replicas: [ParameterServerState] = []
        /// Each worker's pushed update, by clock, until the replicas replayed the push.
        var pushed: [UInt32: [Float]] = [:]

        init(_ configuration: TrainingConfiguration, _ objective: Objective, shards: Int) {
            guard shards > 0 else {
                whole = ParameterServerState(configuration: configuration, objective: objective)
                return
            }
            var coordinator = ParameterServerState(configuration: configuration, objective: objective)
            coordinator.coordinateReplicas()
            let initial = coordinator.weights
            let count = initial.count
            replicas = (0..<shards).map { shard in
                let range = (shard * count / shards)..<((shard + 1) * count / shards)
                return ParameterServerState(
                    replicaOf: configuration, objective: objective, range: range, initialWeights: Array(initial[range]))
            }
            self.coordinator = coordinator
        }

        var weights: [Float] { whole?.weights ?? replicas.flatMap(\.weights) }
        var state: ParameterServerState { whole ?? coordinator! }

        mutating func forward() {
            guard var coordinator else { return }
            let events = coordinator.takeEvents()
            self.coordinator = coordinator
            for event in events {
                for index in replicas.indices {
                    let range = replicas[index].replicaRange!
                    var update: [Float] = []
                    if case .push(let worker, _, _, _) = event { update = Array(pushed[worker]![range]) }
                    replicas[index].replay(event) { into, scale in
                        for i in into.indices { into[i] += scale * update[i] }
                    }
                }
            }
        }

        mutating func join(_ worker: UInt32, rows: Int) {
            if whole != nil { _ = whole!.join(worker, rows: rows) } else { _ = coordinator!.join(worker, rows: rows) }
            forward()
        }

        mutating func start(_ worker: UInt32, clock: Int) -> [ParameterServerState.Reply] {
            defer { forward() }
            if whole != nil { return whole!.requestStart(worker, clock: clock) }
            return coordinator!.requestStart(worker, clock: clock)
        }

        mutating func push(_ worker: UInt32, clock: Int, rows: Int, loss: Double, update: [Float])
            -> [ParameterServerState.Reply]
        {
            pushed[worker] = update
            defer { forward() }
            let add = { (into: inout [Float], scale: Float) in
                for i in into.indices { into[i] += scale * update[i] }
            }
            if whole != nil { return whole!.push(worker, clock: clock, rows: rows, loss: loss, addUpdate: add).1 }
            return coordinator!.push(worker, clock: clock, rows: rows, loss: loss) { _, _ in }.1
        }
    }

    /// Workers running rounds on their shards: worker i computes every `(i + 1)`-th tick under SSP
    /// (a straggler), every tick under BSP. Returns the servers when the job is done.
    static func train(_ configuration: TrainingConfiguration, shards: Int, explodeAt: Int? = nil) -> Servers {
        let (objective, parts) = AlgorithmTests.problem()
        var servers = Servers(configuration, objective, shards: shards)
        let regularizer = Regularizer(configuration)
        let local = LocalSGD(objective: objective, configuration: configuration)
        var elastic = parts.map { _ in ElasticWorker(objective: objective, configuration: configuration) }
        var samplers = parts.map { MinibatchSampler(rows: $0.rows, seed: 1) }
        var held: [UInt32: (clock: Int, weights: [Float])] = [:]
        var clocks = parts.map { _ in 0 }
        func serve(_ replies: [ParameterServerState.Reply]) {
            for case .weights(let worker, let done) in replies where !done {
                held[worker] = (clocks[Int(worker)], servers.weights)
            }
        }
        for (index, part) in parts.enumerated() { servers.join(UInt32(index), rows: part.rows) }
        for index in parts.indices { serve(servers.start(UInt32(index), clock: 0)) }
        var tick = 0
        while !servers.state.isDone && tick < 1_000 {
            tick += 1
            for (index, part) in parts.enumerated() {
                let worker = UInt32(index)
                guard let (clock, weights) = held[worker] else { continue }
                if configuration.staleness != 0 && tick % (index + 1) != 0 { continue }
                held[worker] = nil
                var update = [Float](repeating: 0, count: objective.weightCount)
                var loss: Double
                switch configuration.workerMode {
                case .gradient:
                    loss = objective.lossAndGradient(weights: weights, data: part, gradient: &update)
                    // The sharded job's workers add the penalty the master would have added (BSP).
                    if shards > 0 && configuration.staleness == 0 {
                        loss += regularizer.value(weights: weights, penalized: objective.penalized)
                    }
                case .localSGD:
                    (update, loss) = local.delta(
                        weights: weights, data: part, iteration: clock, sampler: &samplers[index])
                case .elastic:
                    (update, loss) = elastic[index].round(
                        centre: weights, data: part, iteration: clock, sampler: &samplers[index])
                }
                if clock == explodeAt { loss = .infinity }
                serve(servers.push(worker, clock: clock, rows: part.rows, loss: loss, update: update))
                clocks[index] = clock + 1
                serve(servers.start(worker, clock: clock + 1))
            }
        }
        return servers
    }

    static func configuration(_ algorithm: Algorithm, staleness: Int? = 0) -> TrainingConfiguration {
        var configuration = AlgorithmTests.configuration(algorithm, rounds: 20)
        configuration.staleness = staleness
        configuration.penalty = .elasticNet
        configuration.alpha = 1e-2
        return configuration
    }

    static func expectSame(_ configuration: TrainingConfiguration, explodeAt: Int? = nil) {
        let whole = train(configuration, shards: 0, explodeAt: explodeAt)
        for shards in [1, 2, 4] {
            let sharded = train(configuration, shards: shards, explodeAt: explodeAt)
            #expect(sharded.state.completedIterations == whole.state.completedIterations)
            #expect(sharded.state.backoffs.count == whole.state.backoffs.count)
            #expect(sharded.state.lossHistory.count == whole.state.lossHistory.count)
            for (a, b) in zip(sharded.state.lossHistory, whole.state.lossHistory) {
                #expect(abs(a - b) <= 1e-5 * abs(b))
            }
            #expect(maxRelativeDifference(sharded.weights, whole.weights) < 1e-6, "S = \(shards)")
        }
        #expect(whole.state.lossHistory.last! < whole.state.lossHistory.first!)
    }

    @Test("BSP ssgd with an elastic-net penalty and Adam: S = 1, 2, 4 replicas give the whole state's model")
    func bspAdam() {
        var configuration = Self.configuration(.ssgd)
        configuration.optimizer = .adam
        configuration.eta0 = 0.05
        Self.expectSame(configuration)
    }

    @Test("ma, bmuf and easgd: the replicas' model is the whole state's")
    func localAlgorithms() {
        for algorithm in [Algorithm.ma, .bmuf, .easgd] { Self.expectSame(Self.configuration(algorithm)) }
    }

    @Test("SSP with a straggler and the staleness-aware step: the same updates in the same order")
    func stalenessAware() {
        var configuration = Self.configuration(.ssgd, staleness: 2)
        configuration.stalenessAware = true
        Self.expectSame(configuration)
    }

    @Test("a divergence backoff restores every range's best weights together")
    func backoff() {
        var configuration = Self.configuration(.ssgd)
        configuration.onDivergence = .backoff
        Self.expectSame(configuration, explodeAt: 6)
    }
}
