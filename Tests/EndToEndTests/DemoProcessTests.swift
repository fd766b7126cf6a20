import ChimeraTestSupport
import Foundation
import Testing
import ZeroMQ

@Suite("chimera executable, end to end")
struct DemoProcessTests {
    @Test("demo: worker processes register, handshake and exchange tensors with correct sums")
    func demoRuns() async throws {
        let result = try await blocking {
            try runChimera(["demo", "--workers", "2", "--rounds", "6", "--floats", "70000"])
        }
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("2 worker processes"))
        #expect(result.stdout.contains("sums checked: all correct"))
        #expect(result.stdout.contains("rejected messages: 0"))
        #expect(result.stderr.contains("registered as worker 2"))
    }

    @Test("demo: the workers exit when the master is SIGKILLed (no orphans)")
    func noOrphans() async throws {
        try await blocking {
            let process = Process()
            process.executableURL = try chimeraExecutable()
            process.arguments = ["demo", "--workers", "2", "--rounds", "100000000", "--floats", "10"]
            let err = Pipe()
            process.standardError = err
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            // Read stderr until both workers registered; their pids are in those lines.
            var text = ""
            var pids: [Int32] = []
            while pids.count < 2 {
                let chunk = err.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
                pids = text.split(separator: "\n").compactMap { line in
                    guard line.contains("registered as worker"), let open = line.range(of: "(pid ") else { return nil }
                    return Int32(line[open.upperBound...].prefix { $0.isNumber })
                }
            }
            try #require(pids.count == 2, "stderr: \(text)")
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            // The kernel's parent-death signal must end both workers.
            #expect(waitUntilGone(pids), "workers \(pids) outlived their master")
        }
    }

    @Test("keys: prints a Z85 pair whose public half matches the secret")
    func keys() async throws {
        let result = try await blocking { try runChimera(["keys"]) }
        #expect(result.status == 0)
        let fields = Dictionary(
            uniqueKeysWithValues: result.stdout.split(separator: "\n").map {
                let pair = $0.split(separator: "=", maxSplits: 1)
                return (String(pair[0]), String(pair[1]))
            })
        let secret = try #require(fields["secret"])
        #expect(try CurveKeyPair.publicKey(forSecretKey: secret) == fields["public"])
    }

    @Test("bad arguments exit non-zero with a clear message")
    func badArguments() async throws {
        let result = try await blocking { try runChimera(["demo", "--workers", "0"]) }
        #expect(result.status != 0)
        #expect(result.stderr.contains("--workers must be 1…64"))
        // Exposing the gateway beyond loopback needs a token.
        let exposed = try await blocking { try runChimera(["gateway", "--host", "0.0.0.0", "--port", "0"]) }
        #expect(exposed.status != 0)
        #expect(exposed.stderr.contains("needs a bearer token"))
        let missingShard = try await blocking { try runChimera(["worker", "--data", "/nonexistent/shard"]) }
        #expect(missingShard.status != 0)
        #expect(missingShard.stderr.contains("X_train.csv") && missingShard.stderr.contains("not found"))
    }
}
