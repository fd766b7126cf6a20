import ChimeraCluster
import ChimeraTestSupport
import ChimeraWire
import Foundation
import SwiftProtobuf
import Testing

@testable import ChimeraGateway

@Suite("the dashboard's event state machine")
struct DashboardWatchTests {
    static func status(_ workers: [(UInt32, Bool)], job: UInt64 = 0, bytes: UInt64 = 0) -> Chimera_V1_ClusterStatus {
        Chimera_V1_ClusterStatus.with {
            $0.workers = workers.map { id, alive in
                Chimera_V1_WorkerClock.with {
                    $0.workerID = id
                    $0.name = "w\(id)"
                    $0.alive = alive
                    $0.ready = alive
                }
            }
            $0.currentJobID = job
            $0.bytesSent = bytes
            $0.iterationsPerSecond = 10
        }
    }

    static func job(_ id: UInt64, _ state: Chimera_V1_JobState, iteration: UInt64, losses: ClosedRange<UInt64>?)
        -> Chimera_V1_JobStatus
    {
        Chimera_V1_JobStatus.with {
            $0.jobID = id
            $0.state = state
            $0.iteration = iteration
            $0.config = Chimera_V1_FitConfig.with {
                $0.model = .logisticRegression
                $0.maxIterations = 100
                $0.staleness = 2
            }
            $0.report.wallSeconds = 2
            $0.report.clocks = [
                Chimera_V1_WorkerClock.with {
                    $0.name = "w1"
                    $0.clock = iteration
                    $0.alive = true
                    $0.barrierWaitSeconds = 0.5
                }
            ]
            $0.losses = (losses.map(Array.init) ?? []).map { i in
                Chimera_V1_LossPoint.with {
                    $0.iteration = i
                    $0.loss = 1 / Double(i)
                    $0.seconds = Double(i) / 10
                }
            }
        }
    }

    static func names(_ events: [DashboardEvent]) -> [String] { events.map(\.name) }

    @Test("joins, deaths and returns are told once; the first poll only sets the scene")
    func workers() {
        var watch = DashboardWatch()
        #expect(Self.names(watch.observe(status: Self.status([(1, true)]), job: nil, now: 0)) == ["cluster"])
        let joined = watch.observe(status: Self.status([(1, true), (2, true)]), job: nil, now: 0.25)
        #expect(Self.names(joined) == ["worker", "cluster"])
        if case .worker(let change) = joined.first { #expect(change.change == "joined" && change.worker.name == "w2") }
        // Nothing changed and under a second passed: nothing to say.
        #expect(watch.observe(status: Self.status([(1, true), (2, true)]), job: nil, now: 0.5).isEmpty)
        let died = watch.observe(status: Self.status([(1, true), (2, false)]), job: nil, now: 0.75)
        if case .worker(let change) = died.first { #expect(change.change == "died") } else { Issue.record("\(died)") }
        let back = watch.observe(status: Self.status([(1, true), (2, true)]), job: nil, now: 1.0)
        if case .worker(let change) = back.first {
            #expect(change.change == "returned")
        } else {
            Issue.record("\(back)")
        }
        // A second later the cluster is sent again, changed or not (clocks and silences move).
        #expect(
            Self.names(watch.observe(status: Self.status([(1, true), (2, true)]), job: nil, now: 2.1)) == ["cluster"])
    }

    @Test("a job's progress, its new losses (asked from the last one held), and its end told once")
    func job() {
        var watch = DashboardWatch()
        _ = watch.observe(status: Self.status([(1, true)]), job: nil, now: 0)
        #expect(watch.lossesAfter(job: 7) == 0)
        let first = watch.observe(
            status: Self.status([(1, true)], job: 7), job: Self.job(7, .running, iteration: 3, losses: 1...3), now: 0.25
        )
        #expect(Self.names(first) == ["loss", "progress"])
        #expect(watch.lossesAfter(job: 7) == 3)
        guard case .progress(let progress) = first.last else { return }
        #expect(progress.job.model == "logistic" && progress.job.staleness == "2" && progress.job.maxIterations == 100)
        #expect(progress.job.etaSeconds == 9.7)
        #expect(progress.clocks.first?.barrierWaitShare == 0.25)
        _ = watch.observe(
            status: Self.status([(1, true)], job: 7), job: Self.job(7, .running, iteration: 5, losses: 4...5), now: 0.5)
        #expect(watch.snapshot.losses?.points.map { Int($0[0]) } == [1, 2, 3, 4, 5])
        let end = watch.observe(
            status: Self.status([(1, true)], job: 7), job: Self.job(7, .succeeded, iteration: 100, losses: nil),
            now: 0.75)
        #expect(Self.names(end) == ["progress", "job_end"])
        #expect(
            watch.observe(
                status: Self.status([(1, true)], job: 7), job: Self.job(7, .succeeded, iteration: 100, losses: nil),
                now: 0.8
            ).isEmpty)
        // The next job starts its own curve.
        #expect(watch.lossesAfter(job: 8) == 0)
        _ = watch.observe(
            status: Self.status([(1, true)], job: 8), job: Self.job(8, .running, iteration: 1, losses: 1...1), now: 1)
        #expect(watch.snapshot.losses?.points.count == 1)
        #expect(watch.snapshot.jobs.map(\.jobID) == [8, 7])
    }

    @Test(
        "a job that started and ended between two polls still gets its end; one already over at the first poll does not"
    )
    func shortJobs() {
        var watch = DashboardWatch()
        let first = watch.observe(
            status: Self.status([(1, true)], job: 3), job: Self.job(3, .failed, iteration: 2, losses: nil), now: 0)
        #expect(!Self.names(first).contains("job_end"))
        let next = watch.observe(
            status: Self.status([(1, true)], job: 4), job: Self.job(4, .succeeded, iteration: 100, losses: nil),
            now: 0.25)
        #expect(Self.names(next).contains("job_end"))
    }

    @Test("events are one SSE message each: a name and one line of JSON")
    func wireForm() {
        let text = DashboardEvent.dropped(.init(count: 3, message: "3 events were dropped\nreally")).text
        #expect(text.hasPrefix("event: dropped\ndata: {"))
        #expect(text.hasSuffix("}\n\n"))
        #expect(text.split(separator: "\n").count == 2)
    }
}

@Suite("the event hub against a real master", .serialized)
struct EventHubTests {
    @Test("a follower that stops reading loses the oldest events and is told how many; the others and the master go on")
    func slowFollower() async throws {
        let cluster = try await blocking {
            let cluster = try LocalCluster()
            try cluster.startWorker(
                name: "worker-1", data: GatewayTests.breastCancer.appendingPathComponent("worker-1"),
                delayMilliseconds: 5)
            try cluster.waitFor("a ready worker") { $0.workers.filter(\.ready).count == 1 }
            return UncheckedBox(cluster)
        }
        let bridge = try MasterBridge(endpoint: cluster.value.controlEndpoint, size: 2)
        defer { bridge.shutdown() }
        let hub = EventHub(bridge: bridge, interval: .milliseconds(5), buffer: 8)
        let slow = await hub.follow()
        let reader = await hub.follow()
        let started = try await bridge.perform { client in
            try client.startFit(
                try FitSettings.parse(json: Data(#"{"iterations": 100000}"#.utf8)), mode: .parameterServer)
        }
        // The reader keeps up and sees the job run.
        var progress = 0
        for await event in reader {
            if case .progress(let update) = event, update.job.jobID == Int(started.id) { progress += 1 }
            if progress >= 40 { break }
        }
        #expect(progress >= 40)
        // The slow one held at most its buffer; the first it reads after the overflow says what it lost.
        var seen: [DashboardEvent] = []
        for await event in slow {
            seen.append(event)
            if case .dropped = event { break }
            if seen.count > 16 { break }
        }
        let notice = seen.compactMap { event -> DashboardEvent.Dropped? in
            if case .dropped(let value) = event { return value }
            return nil
        }.first
        #expect((notice?.count ?? 0) > 0, "\(seen.map(\.name))")
        #expect(await hub.followerCount == 2)
        try await bridge.perform { client in
            try client.cancel(jobID: started.id, token: started.token)
        }
        await hub.close()
        #expect(await hub.followerCount == 0)
        withExtendedLifetime(cluster) {}
    }
}
