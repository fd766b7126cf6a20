import ChimeraCluster
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Testing

/// Identical worker replicas (`--data-root`), as compose `--scale` and `kubectl scale` start them.
@Suite("Workers claiming shards of a data root", .serialized)
struct ShardClaimProcessTests {
    @Test("each replica takes a free shard; with none left it says so; a dead replica's shard is taken over")
    func replicas() async throws {
        try await blocking {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent(
                "chimera-root-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: root) }
            let source = ParameterServerProcessTests.breastCancer
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            for name in ["worker-1", "worker-2"] {
                try FileManager.default.copyItem(
                    at: source.appendingPathComponent(name), to: root.appendingPathComponent(name))
            }
            let cluster = try LocalCluster()
            func replica(_ label: String) throws -> ChildProcess {
                try ChildProcess(
                    name: label, arguments: ["worker", "--master", cluster.workersEndpoint, "--data-root", root.path],
                    prefix: "[\(label)]", executable: try chimeraExecutable())
            }
            let first = try replica("replica-a")
            let second = try replica("replica-b")
            defer {
                for process in [first, second] {
                    process.send(signal: SIGKILL)
                    process.wait(timeoutSeconds: 5)
                }
            }
            let status = try cluster.waitFor("two replicas") { $0.workers.filter(\.ready).count == 2 }
            #expect(Set(status.workers.map(\.name)) == ["worker-1", "worker-2"])

            // A third replica finds every shard taken and exits with a clear error.
            let third = try runChimera(["worker", "--master", cluster.workersEndpoint, "--data-root", root.path])
            #expect(third.status != 0)
            #expect(third.stderr.contains("all 2 worker folders are claimed"), "\(third.stderr)")

            // Kill one: its lock goes with it and a new replica takes the shard over under the same name.
            let names = Dictionary(uniqueKeysWithValues: status.workers.map { ($0.name, $0.workerID) })
            first.send(signal: SIGKILL)
            first.wait(timeoutSeconds: 5)
            let replacement = try replica("replica-c")
            defer {
                replacement.send(signal: SIGKILL)
                replacement.wait(timeoutSeconds: 5)
            }
            try cluster.waitFor("the replacement") { status in
                status.workers.filter(\.ready).count == 2 && status.workers.allSatisfy { names[$0.name] == $0.workerID }
                    && status.workers.allSatisfy(\.alive)
            }
        }
    }
}
