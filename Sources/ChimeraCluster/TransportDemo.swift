import ChimeraWire
import Foundation
import ZeroMQ

/// The local demo that `chimera demo` runs until training lands: a master-like ROUTER + PUB and N worker
/// processes exchanging weights and gradients as tensor frames, round after round, exactly as the
/// parameter server will (hello/welcome, PUB slow-joiner handshake, weights broadcast, gradient pushes).
public enum TransportDemo {
    public struct Options: Sendable {
        public var workers = 3
        public var rounds = 200
        public var floats = 100_000
        public var transport = "tcp"

        public init() {}
    }

    public struct Report: Sendable {
        public var workers: Int
        public var floats: Int
        public var rounds: Summary  // seconds per round
        public var bytesPerRound: Int
        public var wrongSums: Int
        public var registrationSeconds: Double
        public var decodeErrors: Int
    }

    // MARK: Master

    /// Starts the workers, runs the rounds and stops everything. Blocks the calling thread.
    public static func runMaster(_ options: Options, log: (String) -> Void) throws -> Report {
        let context = try Context()
        let router = try context.socket(.router)
        let pub = try context.socket(.pub)
        try router.setLinger(milliseconds: 0)
        try router.setReceiveHighWaterMark(0)
        try router.setReceiveTimeout(milliseconds: 200)
        try pub.setLinger(milliseconds: 2_000)
        try pub.setSendHighWaterMark(0)

        let ipcDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("chimera-demo-\(getpid())")
        defer { try? FileManager.default.removeItem(at: ipcDirectory) }
        let (routerEndpoint, pubEndpoint): (String, String)
        if options.transport == "ipc" {
            try FileManager.default.createDirectory(at: ipcDirectory, withIntermediateDirectories: true)
            routerEndpoint = try router.bind("ipc://\(ipcDirectory.path)/workers.sock")
            pubEndpoint = try pub.bind("ipc://\(ipcDirectory.path)/broadcast.sock")
        } else {
            routerEndpoint = try router.bind("tcp://127.0.0.1:*")
            pubEndpoint = try pub.bind("tcp://127.0.0.1:*")
        }
        log("master: workers ROUTER \(routerEndpoint), broadcast PUB \(pubEndpoint)")

        let children = try (1...options.workers).map { index in
            try ChildProcess(
                name: "worker-\(index)",
                arguments: [
                    "demo-worker", "--router", routerEndpoint, "--pub", pubEndpoint, "--name", "worker-\(index)",
                    "--parent", "\(getpid())",
                ],
                prefix: "[worker-\(index)]")
        }
        defer {
            for child in children { child.wait(timeoutSeconds: 5) }
        }

        var decodeErrors = 0
        let registrationStart = monotonicSeconds()
        var registered: [UInt32: String] = [:]
        var ready = Set<UInt32>()
        var syncSequence: UInt64 = 0
        var lastSync = 0.0
        while ready.count < options.workers {
            if monotonicSeconds() - registrationStart > 60 {
                throw DemoError("only \(ready.count) of \(options.workers) workers registered within 60 s")
            }
            if let dead = children.first(where: { !$0.isRunning }) {
                throw DemoError("\(dead.name) exited during registration")
            }
            // Slow-joiner handshake: keep broadcasting Sync until every worker has seen one.
            if monotonicSeconds() - lastSync > 0.02 {
                syncSequence += 1
                var sync = Chimera_V1_Sync()
                sync.sequence = syncSequence
                try pub.send(WireCodec.encode(WireMessage(.sync(sync))))
                lastSync = monotonicSeconds()
            }
            guard let frames = try router.receiveMultipart() else { continue }
            do {
                let (peer, payload) = try WireCodec.splitRoutingEnvelope(frames)
                let message = try WireCodec.decode(payload)
                switch message.body {
                case .hello(let hello):
                    let id = UInt32(registered.count + 1)
                    registered[id] = hello.name
                    var welcome = Chimera_V1_Welcome()
                    welcome.workerID = id
                    welcome.heartbeatIntervalMs = 1_000
                    welcome.heartbeatLiveness = 3
                    try reply(router, to: peer, WireMessage(.welcome(welcome), requestID: message.control.requestID))
                    log("master: \(hello.name) (pid \(hello.pid)) registered as worker \(id)")
                case .subscriptionReady(let readyMessage):
                    ready.insert(readyMessage.workerID)
                    try reply(router, to: peer, WireMessage(.ack(Chimera_V1_Ack())))
                default:
                    try reply(router, to: peer, .error(.badRequest, "unexpected \(message.body?.kindName ?? "?")"))
                }
            } catch let error as WireError {
                decodeErrors += 1
                log("master: rejected a message: \(error)")
            }
        }
        let registrationSeconds = monotonicSeconds() - registrationStart
        try router.setReceiveTimeout(milliseconds: 30_000)

        // Rounds: publish weights, gather one gradient per worker, sum, update.
        let count = options.floats
        var weights = (0..<count).map { Float($0 % 1000) * 1e-3 }
        var sum = [Float](repeating: 0, count: count)
        let learningRate: Float = 1e-6
        var roundTimes: [Double] = []
        var wrongSums = 0
        let expectedIDSum = Float(registered.keys.reduce(0, +))
        for round in 0..<options.rounds {
            let start = monotonicSeconds()
            var header = Chimera_V1_Weights()
            header.version = UInt64(round)
            let tensor = weights.withUnsafeBytes { source in
                Tensor(dtype: .float32, shape: [count]) { $0.copyMemory(from: source) }
            }
            try pub.send(WireCodec.encode(WireMessage(.weights(header), tensors: [NamedTensor("weights", tensor)])))

            for index in sum.indices { sum[index] = 0 }
            var gathered = 0
            while gathered < options.workers {
                guard let frames = try router.receiveMultipart() else {
                    throw DemoError("round \(round): no gradient within 30 s (\(gathered)/\(options.workers) arrived)")
                }
                do {
                    let (peer, payload) = try WireCodec.splitRoutingEnvelope(frames)
                    let message = try WireCodec.decode(payload)
                    guard case .gradientPush(let push) = message.body, push.clock == UInt64(round) else {
                        try reply(router, to: peer, .error(.stale, "expected the gradient of round \(round)"))
                        continue
                    }
                    let gradient = try message.tensor(named: "gradient", dtype: .float32, shape: [count])
                    sum.withUnsafeMutableBufferPointer { gradient.accumulateFloat32(into: $0) }
                    var ack = Chimera_V1_Ack()
                    ack.clock = push.clock
                    try reply(router, to: peer, WireMessage(.ack(ack), requestID: message.control.requestID))
                    gathered += 1
                } catch let error as WireError {
                    decodeErrors += 1
                    log("master: rejected a message: \(error)")
                }
            }
            // Each worker sent 0.5·w + id: check the sum at three places.
            for index in [0, count / 2, count - 1] {
                let want = Float(options.workers) * 0.5 * weights[index] + expectedIDSum
                if abs(sum[index] - want) > 1e-3 * (1 + abs(want)) { wrongSums += 1 }
            }
            for index in weights.indices { weights[index] -= learningRate * sum[index] }
            if round >= 2 { roundTimes.append(monotonicSeconds() - start) }
        }

        try pub.send(WireCodec.encode(WireMessage(.shutdown(Chimera_V1_Shutdown()))))
        return Report(
            workers: options.workers, floats: count, rounds: Summary(roundTimes),
            bytesPerRound: 2 * options.workers * count * 4, wrongSums: wrongSums,
            registrationSeconds: registrationSeconds, decodeErrors: decodeErrors)
    }

    private static func reply(_ router: Socket, to peer: Frame, _ message: WireMessage) throws {
        try router.send([peer, Frame()] + WireCodec.encode(message))
    }

    // MARK: Worker

    /// A demo worker process: registers, completes the handshake and answers every weights broadcast
    /// with the gradient 0.5·w + id until the master says shutdown.
    public static func runWorker(routerEndpoint: String, pubEndpoint: String, name: String) throws {
        let context = try Context()
        let request = try context.socket(.req)
        let sub = try context.socket(.sub)
        try request.setLinger(milliseconds: 0)
        try request.setReceiveTimeout(milliseconds: 30_000)
        try sub.setLinger(milliseconds: 0)
        try sub.setReceiveHighWaterMark(0)
        try sub.setReceiveTimeout(milliseconds: 60_000)
        try sub.subscribe()
        try sub.connect(pubEndpoint)
        try request.connect(routerEndpoint)

        var hello = Chimera_V1_WorkerHello()
        hello.name = name
        hello.pid = UInt32(getpid())
        hello.software = "chimera-swift demo"
        guard case .welcome(let welcome) = try call(request, WireMessage(.hello(hello))).body else {
            throw DemoError("\(name): the master did not welcome us")
        }
        let id = welcome.workerID
        var subscribed = false
        while true {
            guard let frames = try sub.receiveMultipart() else {
                throw DemoError("\(name): no broadcast from the master for 60 s")
            }
            let message = try WireCodec.decode(frames)
            switch message.body {
            case .sync(let sync) where !subscribed:
                var ready = Chimera_V1_SubscriptionReady()
                ready.workerID = id
                ready.syncSequence = sync.sequence
                _ = try call(request, WireMessage(.subscriptionReady(ready)))
                subscribed = true
            case .weights(let header):
                let weights = try message.tensor(named: "weights")
                let offset = Float(id)
                let gradient = weights.withUnsafeBytes { source in
                    Tensor(dtype: .float32, shape: weights.shape) { out in
                        let g = out.bindMemory(to: Float.self)
                        for i in g.indices {
                            g[i] = 0.5 * source.loadUnaligned(fromByteOffset: i &* 4, as: Float.self) + offset
                        }
                    }
                }
                var push = Chimera_V1_GradientPush()
                push.workerID = id
                push.clock = header.version
                push.rows = 1
                _ = try call(request, WireMessage(.gradientPush(push), tensors: [NamedTensor("gradient", gradient)]))
            case .shutdown:
                return
            default:
                continue
            }
        }
    }

    private static func call(_ socket: Socket, _ message: WireMessage) throws -> WireMessage {
        try socket.send(WireCodec.encode(message))
        guard let frames = try socket.receiveMultipart() else {
            throw DemoError("the master did not answer within 30 s")
        }
        let reply = try WireCodec.decode(frames)
        if case .error(let error) = reply.body { throw DemoError("master refused: \(error.message)") }
        return reply
    }
}

public struct DemoError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
