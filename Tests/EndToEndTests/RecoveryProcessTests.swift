import ChimeraCluster
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Faults of the processes themselves: a master killed mid-fit and restarted, a `chimera local`
/// killed or stopped mid-fit.
@Suite("Recovery, end to end", .serialized)
struct RecoveryProcessTests {
    @Test(
        "master SIGKILLed mid-fit, restarted with --resume: every worker comes back and the job resumes from its checkpoint"
    )
    func masterRestart() async throws {
        try await blocking {
            let data = ParameterServerProcessTests.breastCancer
            let cluster = try LocalCluster(heartbeatMilliseconds: 200)
            for index in 1...3 {
                try cluster.startWorker(
                    name: "worker-\(index)", data: data.appendingPathComponent("worker-\(index)"), delayMilliseconds: 5)
            }
            try cluster.waitFor("3 workers") { $0.workers.filter(\.ready).count == 3 }
            var request = Chimera_V1_FitRequest()
            request.kind = .parameterServer
            request.asynchronous = true
            request.config.maxIterations = 600
            request.config.eta0 = 0.2
            request.config.checkpointEvery = 10
            let jobID = try cluster.client().fit(request, timeoutMilliseconds: 30_000).jobID
            try cluster.waitFor("30 iterations") { $0.iteration >= 30 }
            // What was learnt from the workers' data is the owner's alone.
            let checkpoint = cluster.modelDirectory.appendingPathComponent("checkpoint.json").path
            let mode = try FileManager.default.attributesOfItem(atPath: checkpoint)[.posixPermissions] as? Int
            #expect(mode == 0o600, "checkpoint.json mode \(String(mode ?? 0, radix: 8))")

            try cluster.restartMaster(extraArguments: ["--resume"])
            let client = try cluster.client()
            // Every worker re-registers by itself (heartbeats meet "unknown worker", or silence) and
            // the job goes on under its id from the checkpoint's iteration, not from 0.
            let resumed = try cluster.waitFor(timeoutSeconds: 60, "the job to resume with 3 workers") {
                $0.currentJobID == jobID && $0.workers.filter(\.ready).count == 3
            }
            #expect(resumed.iteration >= 30, "resumed from the checkpoint: \(resumed.iteration)")
            let status = try ParameterServerProcessTests.waitForJob(client, jobID, timeoutSeconds: 120)
            #expect(status.state == .succeeded, "\(status.error)")
            #expect(status.report.iterations == 600)
            #expect(status.report.clocks.filter(\.alive).count == 3)
            // Nothing of the interrupted job is resumed twice: the next fit is a new job.
            request.asynchronous = false
            request.config.maxIterations = 20
            let next = try client.fit(request, timeoutMilliseconds: 60_000)
            #expect(next.state == .succeeded && next.jobID == jobID + 1)
        }
    }

    @Test("--expect-workers: a fit waits (busy, naming how many are ready) until the expected workers are")
    func expectWorkers() async throws {
        try await blocking {
            let data = ParameterServerProcessTests.breastCancer
            let cluster = try LocalCluster(extraArguments: ["--expect-workers", "2", "--resume-wait-s", "600"])
            try cluster.startWorker(name: "worker-1", data: data.appendingPathComponent("worker-1"))
            try cluster.waitFor("a worker") { $0.workers.filter(\.ready).count == 1 }
            var request = Chimera_V1_FitRequest()
            request.config.maxIterations = 20
            do {
                _ = try cluster.client().fit(request, timeoutMilliseconds: 30_000)
                Issue.record("a fit started with 1 of 2 expected workers")
            } catch MasterClientError.refused(let code, let message) {
                #expect(code == .busy && message.contains("1 of 2"), "\(message)")
            }
            try cluster.startWorker(name: "worker-2", data: data.appendingPathComponent("worker-2"))
            try cluster.waitFor("both workers") { $0.workers.filter(\.ready).count == 2 }
            let reply = try cluster.client().fit(request, timeoutMilliseconds: 60_000)
            #expect(reply.state == .succeeded && reply.report.clocks.count == 2)
        }
    }

    /// Starts `chimera local` on the breast-cancer data and an asynchronous fit long enough to be
    /// interrupted; returns the process, the children's pids, and the gateway's URL.
    static func localFitting() throws -> (ChildProcess, [Int32], String) {
        let data = repositoryRoot.appendingPathComponent("deploy/data/breast-cancer")
        let local = try ChildProcess(
            name: "local", arguments: ["local", "--data", data.path, "--port", "0"], prefix: "[local]",
            captureOutput: true,
            executable: try chimeraExecutable())
        var lines: [String] = []
        while !(lines.last?.hasPrefix("chimera-local ") ?? false) {
            guard let line = local.nextLine(timeoutSeconds: 120) else { break }
            lines.append(line)
        }
        let url = String(lines.last?.split(separator: " ").first { $0.hasPrefix("url=") }?.dropFirst(4) ?? "")
        let pids =
            lines.first { $0.hasPrefix("chimera local: pids") }?.split(separator: " ").compactMap { part in
                part.split(separator: "=").last.flatMap { Int32($0) }
            } ?? []
        let body = Data(#"{"iterations": 10000000, "eta0": 0.01}"#.utf8)
        var (status, reply) = try LocalClusterCommandTests.post("\(url)/v1/chimera/jobs", body)
        for _ in 0..<100 where status == 503 {
            usleep(100_000)
            (status, reply) = try LocalClusterCommandTests.post("\(url)/v1/chimera/jobs", body)
        }
        #expect(status == 202, "\(reply)")
        // Let the fit run a little: the workers are then inside a round (computing, or parked).
        usleep(500_000)
        return (local, pids, url)
    }

    @Test("chimera local SIGKILLed during a fit: no process is left after 5 s")
    func localKilledMidFit() async throws {
        try await blocking {
            let (local, pids, _) = try Self.localFitting()
            #expect(pids.count == 6, "master, 4 workers, gateway: \(pids)")
            local.send(signal: SIGKILL)
            local.wait(timeoutSeconds: 5)
            #expect(
                waitUntilGone(pids, seconds: 5),
                "children outlived chimera local by 5 s: \(pids.filter { !processIsGone($0) })")
        }
    }

    @Test("chimera local SIGTERMed during a fit stops itself and every child")
    func localTerminatedMidFit() async throws {
        try await blocking {
            let (local, pids, _) = try Self.localFitting()
            local.send(signal: SIGTERM)
            local.wait(timeoutSeconds: 10)
            #expect(!local.isRunning)
            #expect(waitUntilGone(pids, seconds: 5), "children left: \(pids.filter { !processIsGone($0) })")
        }
    }
}
