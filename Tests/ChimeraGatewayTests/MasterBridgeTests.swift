import ChimeraCluster
import ChimeraTestSupport
import ChimeraWire
import Glibc
import Testing
import ZeroMQ

@testable import ChimeraGateway

@Suite("Master bridge", .serialized)
struct MasterBridgeTests {
    /// A stand-in master on a real ROUTER socket: answers each job-status request with that job's id,
    /// after `delayMicroseconds`, until it gets job id 0.
    static func echoMaster(delayMicroseconds: UInt32) throws -> (endpoint: String, context: Context) {
        let context = try Context()
        let router = try testSocket(context, .router)
        // No receive timeout: on a loaded machine (CI runs suites in parallel) the test may send its
        // first request seconds later. Job id 0 ends the loop; so does the context's end (ETERM).
        try router.setReceiveTimeout(milliseconds: -1)
        let endpoint = try router.bind("tcp://127.0.0.1:*")
        let box = UncheckedSocket(router)
        DedicatedThread.start(name: "echo-master") {
            let router = box.socket
            while let frames = try? router.receiveMultipart() {
                guard frames.count >= 3, let request = try? WireCodec.decode(frames.dropFirst(2)),
                    case .jobStatusRequest(let asked) = request.body
                else { continue }
                if asked.jobID == 0 { break }
                usleep(delayMicroseconds)
                var status = Chimera_V1_JobStatus()
                status.jobID = asked.jobID
                let reply = WireMessage(.jobStatus(status), requestID: request.control.requestID)
                guard let encoded = try? WireCodec.encode(reply) else { continue }
                try? router.send([frames[0], frames[1]] + encoded)
            }
            router.close()
        }
        return (endpoint, context)
    }

    @Test(
        "more concurrent requests than clients: each gets its own answer, sent from the caller or from a bridge thread")
    func concurrentRequests() async throws {
        let master = try Self.echoMaster(delayMicroseconds: 200)
        let bridge = try MasterBridge(endpoint: master.endpoint, size: 2)
        defer { bridge.shutdown() }
        let answers = try await withThrowingTaskGroup(of: (UInt64, UInt64).self) { group in
            for job in UInt64(1)...60 {
                group.addTask {
                    let request = jobStatusRequest(job)
                    let status: Chimera_V1_JobStatus
                    if job % 2 == 0 {
                        status = try await bridge.perform(
                            sending: { client in try client.send(WireMessage(.jobStatusRequest(request))) },
                            receiving: { client in
                                guard case .jobStatus(let status) = try client.receive(timeoutMilliseconds: 60_000).body
                                else {
                                    throw MasterClientError.unexpected(nil)
                                }
                                return status
                            })
                    } else {
                        status = try await bridge.perform { client in
                            try client.jobStatus(job, timeoutMilliseconds: 60_000)
                        }
                    }
                    return (job, status.jobID)
                }
            }
            var answers: [(UInt64, UInt64)] = []
            for try await answer in group { answers.append(answer) }
            return answers
        }
        #expect(answers.count == 60)
        for (asked, answered) in answers { #expect(asked == answered) }
        // Stops the stand-in master.
        _ = try? await bridge.perform { client in try client.jobStatus(0, timeoutMilliseconds: 200) }
    }

    @Test("a reply that does not come: the caller gets a timeout, and the next request on that client works")
    func timeoutThenReuse() async throws {
        let master = try Self.echoMaster(delayMicroseconds: 300_000)
        let bridge = try MasterBridge(endpoint: master.endpoint, size: 1)
        defer { bridge.shutdown() }
        let request = jobStatusRequest(7)
        await #expect(throws: MasterClientError.self) {
            try await bridge.perform(
                sending: { client in try client.send(WireMessage(.jobStatusRequest(request))) },
                receiving: { client in _ = try client.receive(timeoutMilliseconds: 50) })
        }
        let status = try await bridge.perform { client in try client.jobStatus(8, timeoutMilliseconds: 60_000) }
        #expect(status.jobID == 8)
        _ = try? await bridge.perform { client in try client.jobStatus(0, timeoutMilliseconds: 200) }
    }
}

private func jobStatusRequest(_ job: UInt64) -> Chimera_V1_JobStatusRequest {
    var request = Chimera_V1_JobStatusRequest()
    request.jobID = job
    return request
}

/// Hands the ROUTER to the one thread that uses it.
private final class UncheckedSocket: @unchecked Sendable {
    let socket: Socket
    init(_ socket: Socket) { self.socket = socket }
}
