import ChimeraCluster
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Testing

/// Two worker processes started under one name (the same --data twice, say) must not share an identity.
@Suite("Worker names, end to end", .serialized)
struct WorkerNameProcessTests {
    @Test("a second process under a live worker's name waits, refused and counted; it takes over when the first dies")
    func duplicateName() async throws {
        try await blocking {
            let data = ParameterServerProcessTests.breastCancer
            let cluster = try LocalCluster()
            let first = try cluster.startWorker(name: "w1", data: data.appendingPathComponent("worker-1"))
            try cluster.waitFor("w1 ready") { $0.workers.contains { $0.name == "w1" && $0.ready } }
            let second = try cluster.startWorker(name: "w1", data: data.appendingPathComponent("worker-2"))
            cluster.adopt(first, name: "w1 (first)")
            try cluster.waitFor("the second hello refused") { ($0.rejectedByKind["name_in_use"] ?? 0) > 0 }

            // Meanwhile the first keeps its identity and fits alone.
            let client = try cluster.client()
            var request = Chimera_V1_FitRequest()
            request.config.maxIterations = 30
            let reply = try client.fit(request, timeoutMilliseconds: 60_000)
            #expect(reply.state == .succeeded && reply.report.clocks.count == 1, "\(reply)")
            let holder = try #require(try client.status().workers.first { $0.name == "w1" })
            #expect(holder.pid == UInt32(first.processIdentifier) && holder.alive)

            // The first dies: once it is declared dead, the waiting process takes the name over.
            first.send(signal: SIGKILL)
            try cluster.waitFor("the second process holds w1") { status in
                status.workers.contains { $0.name == "w1" && $0.ready && $0.pid == UInt32(second.processIdentifier) }
            }
            #expect(try client.fit(request, timeoutMilliseconds: 60_000).state == .succeeded)
        }
    }
}
