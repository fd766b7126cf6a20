import ChimeraCluster
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Clients learn of a dead master from the probe, not from their (hour-long) timeouts.
@Suite("Fail fast, end to end", .serialized)
struct FailFastProcessTests {
    /// A master, two slow workers and a `chimera gateway` process; returns them and the gateway URL.
    static func clusterWithGateway() throws -> (LocalCluster, ChildProcess, String) {
        let cluster = try LocalCluster(heartbeatMilliseconds: 200)
        let data = ParameterServerProcessTests.breastCancer
        for index in 1...2 {
            try cluster.startWorker(
                name: "worker-\(index)", data: data.appendingPathComponent("worker-\(index)"), delayMilliseconds: 20)
        }
        let gateway = try ChildProcess(
            name: "gateway", arguments: ["gateway", "--master", cluster.controlEndpoint, "--port", "0"],
            prefix: "[gateway]",
            captureOutput: true, executable: try chimeraExecutable())
        var url = ""
        while let line = gateway.nextLine(timeoutSeconds: 60) {
            if line.hasPrefix("chimera-gateway url=") {
                url = String(line.dropFirst("chimera-gateway url=".count))
                break
            }
        }
        return (cluster, gateway, url)
    }

    @Test(
        "the master dies during a synchronous fit: the client is told it is unreachable, not left waiting for its timeout"
    )
    func clientSeesDeadMaster() async throws {
        try await blocking {
            let cluster = try LocalCluster(heartbeatMilliseconds: 200)
            let data = ParameterServerProcessTests.breastCancer
            try cluster.startWorker(
                name: "worker-1", data: data.appendingPathComponent("worker-1"), delayMilliseconds: 20)
            try cluster.waitFor("a worker") { $0.workers.filter(\.ready).count == 1 }
            let client = try MasterClient.watching(endpoint: cluster.controlEndpoint)
            let masterPID = cluster.master.processIdentifier
            let killer = Thread {
                usleep(1_000_000)
                kill(masterPID, SIGKILL)
            }
            killer.start()
            var request = Chimera_V1_FitRequest()
            request.config.maxIterations = 1_000_000
            do {
                _ = try client.fit(request, timeoutMilliseconds: 600_000)
                Issue.record("the fit answered though its master was killed")
            } catch MasterClientError.unreachable(_, let silence) {
                #expect(silence < 600_000)
            } catch {
                Issue.record("expected 'unreachable', got \(error)")
            }
        }
    }

    @Test("gateway: /healthz and /readyz follow the master; a synchronous HTTP fit ends 503 when the master dies")
    func gatewayFollowsMaster() async throws {
        try await blocking {
            let (cluster, gateway, url) = try Self.clusterWithGateway()
            defer { ChildProcess.stopAll([gateway]) }
            try cluster.waitFor("2 workers") { $0.workers.filter(\.ready).count == 2 }
            var (status, body) = try LocalClusterCommandTests.get("\(url)/healthz")
            #expect(status == 200 && body.contains("reachable"), "\(body)")
            for _ in 0..<100 where status != 200 || !body.contains("\"ready_workers\":2") {
                usleep(50_000)
                (status, body) = try LocalClusterCommandTests.get("\(url)/readyz")
            }
            #expect(status == 200 && body.contains("\"ready_workers\":2"), "\(body)")

            let masterPID = cluster.master.processIdentifier
            let killer = Thread {
                usleep(1_000_000)
                kill(masterPID, SIGKILL)
            }
            killer.start()
            let (fitStatus, fitBody) = try LocalClusterCommandTests.post(
                "\(url)/v1/chimera/parameter-server/fit", Data(#"{"iterations": 1000000}"#.utf8))
            #expect(fitStatus == 503 && fitBody.contains("MasterUnavailable"), "\(fitStatus) \(fitBody)")
            let (health, healthBody) = try LocalClusterCommandTests.get("\(url)/healthz")
            #expect(health == 503 && healthBody.contains("\"errorMessage\":\"MasterUnavailable\""), "\(healthBody)")
            let (ready, _) = try LocalClusterCommandTests.get("\(url)/readyz")
            #expect(ready == 503)
        }
    }
}
