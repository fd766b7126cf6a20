import ChimeraCluster
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Testing

/// Rough edges of the command line, found by using it as a new user would.
@Suite("chimera commands as a user meets them", .serialized)
struct CommandLineProcessTests {
    static let breastCancer = ParameterServerProcessTests.breastCancer

    static func cluster() throws -> LocalCluster {
        let cluster = try LocalCluster()
        for index in 1...2 {
            try cluster.startWorker(
                name: "worker-\(index)", data: breastCancer.appendingPathComponent("worker-\(index)"))
        }
        try cluster.waitFor("2 ready workers") { $0.workers.filter(\.ready).count == 2 }
        return cluster
    }

    @Test(
        "Ctrl-C on chimera fit cancels the job and says so; chimera cancel and --timeout cancel too; status names the last job"
    )
    func cancelling() async throws {
        try await blocking {
            let cluster = try Self.cluster()
            let client = try cluster.client()
            #expect(try runChimera(["status", "--master", cluster.controlEndpoint]).stdout.hasPrefix("no job yet"))

            let log = FileManager.default.temporaryDirectory.appendingPathComponent(
                "chimera-fit-\(UUID().uuidString.prefix(8)).log")
            defer { try? FileManager.default.removeItem(at: log) }
            let fit = try ChildProcess(
                name: "fit", arguments: ["fit", "--master", cluster.controlEndpoint, "--iterations", "10000000"],
                captureOutput: true,
                executable: try chimeraExecutable(), logFile: log)
            try cluster.waitFor("the fit to run") { $0.currentJobState == .running && $0.iteration > 5 }
            fit.send(signal: SIGINT)
            #expect(fit.wait(timeoutSeconds: 20) == 130)
            let said = try String(contentsOf: log, encoding: .utf8)
            #expect(said.contains("job 1 cancelled (Ctrl-C)"), "\(said)")
            #expect(try client.status().currentJobState == .cancelled)
            let status = try runChimera(["status", "--master", cluster.controlEndpoint])
            #expect(status.stdout.hasPrefix("job 1 cancelled"), "\(status.stdout)")

            // --timeout: the master answers, the fit is long: it is cancelled, and the message says so.
            let slow = try runChimera([
                "fit", "--master", cluster.controlEndpoint, "--iterations", "10000000", "--timeout", "1",
            ])
            #expect(slow.status == 1)
            #expect(
                slow.stderr.contains("had not ended after --timeout 1.0 s (the master answers; the fit is long)"),
                "\(slow.stderr)")
            #expect(!slow.stderr.contains("Usage:"))
            #expect(try client.status().currentJobState == .cancelled)

            // chimera cancel with the job's token; without it the master refuses.
            var request = Chimera_V1_FitRequest()
            request.kind = .parameterServer
            request.asynchronous = true
            request.config.maxIterations = 10_000_000
            let started = try client.fit(request)
            let refused = try runChimera(["cancel", "\(started.jobID)", "--master", cluster.controlEndpoint])
            #expect(refused.status != 0 && refused.stderr.contains("job_token"), "\(refused.stderr)")
            let cancelled = try runChimera([
                "cancel", "\(started.jobID)", "--token", String(started.jobToken, radix: 16), "--master",
                cluster.controlEndpoint,
            ])
            #expect(
                cancelled.status == 0 && cancelled.stdout.contains("job \(started.jobID): cancelled"),
                "\(cancelled.stderr)")

            // A short fit through the command: the report, then succeeded in the status.
            let short = try runChimera([
                "fit", "--master", cluster.controlEndpoint, "--iterations", "5", "--batch-size", "8",
            ])
            #expect(
                short.status == 0 && short.stdout.contains("succeeded") && short.stdout.contains("iterations 5"),
                "\(short.stdout)")
        }
    }

    @Test("runtime errors print no usage text; a port in use is named with a way out")
    func plainErrors() async throws {
        try await blocking {
            let cluster = try Self.cluster()
            // The gateway's port, taken by a gateway already there.
            let first = try ChildProcess(
                name: "gateway", arguments: ["gateway", "--master", cluster.controlEndpoint, "--port", "0"],
                captureOutput: true,
                executable: try chimeraExecutable())
            defer { first.terminate() }
            let line = try #require(first.nextLine(timeoutSeconds: 30))
            let port = try #require(line.split(separator: ":").last.map(String.init))
            let second = try runChimera(["gateway", "--master", cluster.controlEndpoint, "--port", port])
            #expect(second.status != 0)
            #expect(
                second.stderr.contains("port \(port) on 127.0.0.1 is already in use")
                    && second.stderr.contains("--port 0"), "\(second.stderr)")
            #expect(!second.stderr.contains("Usage:"))
            let local = try runChimera(["local", "--port", port, "--workers", "1"])
            #expect(local.status != 0 && local.stderr.contains("port \(port) is already in use"), "\(local.stderr)")
            // The master's ports.
            let workersPort = try #require(cluster.workersEndpoint.split(separator: ":").last.map(String.init))
            let master = try runChimera(["master", "--port", workersPort])
            #expect(
                master.status != 0 && master.stderr.contains("is already in use") && master.stderr.contains("--port 0"),
                "\(master.stderr)")
            #expect(!master.stderr.contains("Usage:"))
            // A bad fit setting names it, without usage text.
            let bad = try runChimera(["fit", "--master", cluster.controlEndpoint, "--iterationz", "5"])
            #expect(
                bad.status != 0 && bad.stderr.contains("unknown option --iterationz (did you mean --iterations?)"),
                "\(bad.stderr)")
            #expect(!bad.stderr.contains("Usage:"))
        }
    }

    @Test(
        "--log-format json writes one object per line with level, label and metadata; SIGTERM stops a master and a worker gracefully"
    )
    func jsonLogsAndGracefulShutdown() async throws {
        try await blocking {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
                "chimera-logs-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let masterLog = folder.appendingPathComponent("master.log")
            let workerLog = folder.appendingPathComponent("worker.log")
            let master = try ChildProcess(
                name: "master", arguments: ["master", "--port", "0", "--log-format", "json", "--log-level", "debug"],
                captureOutput: true, executable: try chimeraExecutable(), logFile: masterLog)
            let line = try #require(master.nextLine(timeoutSeconds: 30))
            let endpoints = try #require(MasterAnnouncement(line: line))
            let worker = try ChildProcess(
                name: "worker",
                arguments: [
                    "worker", "--master", endpoints.workers, "--data",
                    Self.breastCancer.appendingPathComponent("worker-1").path,
                    "--name", "w1", "--log-format", "json",
                ],
                captureOutput: true, executable: try chimeraExecutable(), logFile: workerLog)
            let client = try MasterClient(endpoint: endpoints.control)
            let deadline = Date().addingTimeInterval(30)
            while try client.status().workers.filter(\.ready).isEmpty, Date() < deadline { usleep(20_000) }
            worker.send(signal: SIGTERM)
            #expect(worker.wait(timeoutSeconds: 20) == 0)
            master.send(signal: SIGTERM)
            #expect(master.wait(timeoutSeconds: 20) == 0)

            func objects(_ url: URL) throws -> [[String: Any]] {
                try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { line in
                    let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                    return try #require(object, "not a JSON object: \(line)")
                }
            }
            let masterLines = try objects(masterLog)
            #expect(
                masterLines.contains {
                    $0["message"] as? String == "stopped" && $0["label"] as? String == "chimera.master"
                })
            #expect(
                masterLines.contains {
                    ($0["message"] as? String)?.contains("registered as worker") == true
                        && $0["worker"] as? String == "w1"
                })
            #expect(masterLines.allSatisfy { $0["time"] is String && $0["level"] is String })
            let workerLines = try objects(workerLog)
            #expect(
                workerLines.contains {
                    ($0["message"] as? String)?.hasPrefix("registered as worker") == true
                        && $0["worker"] as? String == "w1"
                })
        }
    }
}
