import ChimeraCluster
import ChimeraML
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Synchronization
import Testing
import ZeroMQ

/// Peers that act for others, or try to exhaust the master: refused, bounded, counted.
@Suite("Hostile peers, end to end", .serialized)
struct HostilePeerProcessTests {
    static func twoWorkers(heartbeatMilliseconds: Int = 200) throws -> LocalCluster {
        let cluster = try LocalCluster(heartbeatMilliseconds: heartbeatMilliseconds)
        let data = ParameterServerProcessTests.breastCancer
        for index in 1...2 {
            try cluster.startWorker(name: "worker-\(index)", data: data.appendingPathComponent("worker-\(index)"))
        }
        try cluster.waitFor("2 workers") { $0.workers.filter(\.ready).count == 2 }
        return cluster
    }

    @Test(
        "a spoofed goodbye or heartbeat (without the worker's session) is refused: the worker stays, a stopped one dies"
    )
    func spoofedWorkerMessages() async throws {
        try await blocking {
            let cluster = try Self.twoWorkers()
            let status = try cluster.client().status()
            let first = try #require(status.workers.first { $0.name == "worker-1" })
            let second = try #require(status.workers.first { $0.name == "worker-2" })
            let peer = try HandMadePeer(endpoint: cluster.workersEndpoint)

            var goodbye = Chimera_V1_WorkerGoodbye()
            goodbye.workerID = first.workerID
            goodbye.reason = "spoofed"
            #expect(errorCode(try peer.exchange(WireMessage(.goodbye(goodbye)))) == .unknownWorker)
            goodbye.session = 12_345
            #expect(errorCode(try peer.exchange(WireMessage(.goodbye(goodbye)))) == .unknownWorker)
            #expect(try cluster.client().status().workers.first { $0.name == "worker-1" }?.alive == true)

            // Heartbeats for a stopped worker do not keep it alive.
            let stopped = try #require(cluster.workers["worker-2"])
            stopped.send(signal: SIGSTOP)
            defer { stopped.send(signal: SIGCONT) }
            var beat = Chimera_V1_Heartbeat()
            beat.workerID = second.workerID
            var declaredDead = false
            for _ in 0..<100 where !declaredDead {
                #expect(errorCode(try peer.exchange(WireMessage(.heartbeat(beat)))) == .unknownWorker)
                usleep(50_000)
                declaredDead = try cluster.client().status().workers.first { $0.name == "worker-2" }?.alive == false
            }
            #expect(declaredDead, "spoofed heartbeats kept a stopped worker alive")
            #expect(try cluster.client().status().rejectedByKind["wrong_session"] ?? 0 >= 2)
        }
    }

    /// The master's resident memory, from /proc.
    static func residentMegabytes(_ pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) })
        else { return 0 }
        return kilobytes / 1024
    }

    @Test(
        "5,000 one-off hellos and a 20 s flood of unread requests from 50 sockets: memory stays bounded, a fit alongside succeeds"
    )
    func floodAndHellos() async throws {
        try await blocking {
            let cluster = try Self.twoWorkers(heartbeatMilliseconds: 500)
            let masterPID = cluster.master.processIdentifier
            let shard = try ShardLayout.loadShard(
                ParameterServerProcessTests.breastCancer.appendingPathComponent("worker-1"))
            let peer = try HandMadePeer(endpoint: cluster.workersEndpoint)
            var welcomed = 0
            for index in 0..<5_000 {
                let hello = HandMadePeer.hello(name: "fake-\(index)", rows: 10, features: shard.featureNames)
                if case .welcome = try peer.exchange(WireMessage(.hello(hello)))?.body { welcomed += 1 }
            }
            #expect(welcomed > 0)
            // No fake ever heartbeats: they all die, and their records are bounded by the cap.
            let afterHellos = try cluster.client().status()
            #expect(
                afterHellos.workers.count <= 2 * 1_024 + 2,
                "records of one-off hellos are pruned: \(afterHellos.workers.count)")
            #expect(afterHellos.workers.filter(\.alive).count <= 1_024)

            // The flood: 50 DEALER sockets sending status requests and heartbeats as fast as they can,
            // never reading a reply. Two threads drive them (as two remote hosts would): 50 spinning
            // threads on this 2-core machine would starve the master of CPU, which no remote flood can.
            let stop = Atomic<Bool>(false)
            let endpoint = cluster.workersEndpoint
            let flooders = (0..<2).map { thread in
                Thread {
                    guard let context = try? Context() else { return }
                    let sockets = (0..<25).compactMap { _ -> Socket? in
                        guard let socket = try? context.socket(.dealer) else { return nil }
                        try? socket.setLinger(milliseconds: 0)
                        try? socket.connect(endpoint)
                        return socket
                    }
                    var beat = Chimera_V1_Heartbeat()
                    beat.workerID = UInt32(thread + 1)
                    let messages = [
                        WireMessage(.statusRequest(Chimera_V1_StatusRequest())), WireMessage(.heartbeat(beat)),
                    ]
                    var sent = 0
                    while !stop.load(ordering: .relaxed) {
                        var accepted = 0
                        for socket in sockets {
                            guard let frames = try? WireCodec.encode(messages[sent % 2]),
                                (try? socket.send([Frame()] + frames, dontWait: true)) != nil
                            else { continue }
                            accepted += 1
                            sent += 1
                        }
                        // Every queue full: the master is behind; try again shortly.
                        if accepted == 0 { usleep(1_000) }
                    }
                    for socket in sockets { socket.close() }
                }
            }
            let floodStarted = Date()
            for flooder in flooders { flooder.start() }
            var request = Chimera_V1_FitRequest()
            request.config.maxIterations = 300
            request.config.eta0 = 0.5
            let reply = try cluster.client().fit(request, timeoutMilliseconds: 120_000)
            var peak = 0.0
            // The flood lasts 20 s in all; the master's memory is sampled through it.
            while Date().timeIntervalSince(floodStarted) < 20 {
                peak = max(peak, Self.residentMegabytes(masterPID))
                usleep(250_000)
            }
            stop.store(true, ordering: .relaxed)
            usleep(200_000)
            #expect(reply.state == .succeeded && reply.report.iterations == 300)
            #expect(peak < 400, "the master's memory under the flood: \(peak) MB")
            print("flood: the master's peak resident memory \(peak) MB; the fit took \(reply.report.wallSeconds) s")
            let status = try cluster.client().status()
            #expect(status.workers.filter(\.ready).count == 2)
            #expect(status.rejectedMessages > 0)
        }
    }
}
