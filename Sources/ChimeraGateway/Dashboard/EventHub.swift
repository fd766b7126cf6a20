import ChimeraCluster
import ChimeraWire
import Foundation

/// Polls the master while anyone follows `/v1/chimera/events` and fans the `DashboardWatch`'s
/// events out to every follower. Each follower has a bounded buffer: one that reads too slowly
/// loses the oldest events (and is told how many), so a stalled browser never slows the poll, let
/// alone the master.
actor EventHub {
    /// Events a follower may have waiting before the oldest are dropped.
    static let followerBuffer = 256
    private let buffer: Int

    private let bridge: MasterBridge
    private let interval: Duration
    private let requestTimeout: Int32
    private var watch = DashboardWatch()
    private var followers: [Int: AsyncStream<DashboardEvent>.Continuation] = [:]
    private var dropped: [Int: Int] = [:]
    private var nextID = 0
    private var poller: Task<Void, Never>?
    private var closed = false

    init(
        bridge: MasterBridge, interval: Duration = .milliseconds(250), requestTimeout: Int32 = 5_000,
        buffer: Int = followerBuffer
    ) {
        self.bridge = bridge
        self.buffer = buffer
        self.interval = interval
        self.requestTimeout = requestTimeout
    }

    /// A new follower's stream: the snapshot first, then the events as they happen.
    func follow() async -> AsyncStream<DashboardEvent> {
        if watch.cluster == nil { await poll() }
        let (stream, continuation) = AsyncStream.makeStream(
            of: DashboardEvent.self, bufferingPolicy: .bufferingNewest(buffer))
        if closed {
            continuation.finish()
            return stream
        }
        let id = nextID
        nextID += 1
        continuation.yield(.snapshot(watch.snapshot))
        followers[id] = continuation
        continuation.onTermination = { _ in Task { await self.leave(id) } }
        if poller == nil {
            poller = Task { [interval] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    await self.poll()
                }
            }
        }
        return stream
    }

    /// Ends every stream (the gateway is shutting down) and the polling.
    func close() {
        closed = true
        for follower in followers.values { follower.finish() }
        followers.removeAll()
        poller?.cancel()
        poller = nil
    }

    var followerCount: Int { followers.count }

    private func leave(_ id: Int) {
        followers[id] = nil
        dropped[id] = nil
        if followers.isEmpty {
            poller?.cancel()
            poller = nil
        }
    }

    private func poll() async {
        let held = watch
        let after: @Sendable (UInt64) -> UInt64 = { held.lossesAfter(job: $0) }
        let timeout = requestTimeout
        let answer = try? await bridge.perform { client -> (Chimera_V1_ClusterStatus, Chimera_V1_JobStatus?) in
            let status = try client.status(timeoutMilliseconds: timeout)
            let id = status.currentJobID
            guard id > 0 else { return (status, nil) }
            let job = try? client.jobStatus(id, lossesAfter: after(id), timeoutMilliseconds: timeout)
            return (status, job)
        }
        guard let (status, job) = answer else {
            watch.unreachable()
            return
        }
        let events = watch.observe(
            status: status, job: job, now: Date().timeIntervalSince1970)
        for event in events { send(event) }
    }

    private func send(_ event: DashboardEvent) {
        for (id, follower) in followers {
            if let count = dropped[id], count > 0 {
                // Said as soon as there is room again.
                let notice = DashboardEvent.dropped(
                    .init(
                        count: count,
                        message:
                            "\(count) events were dropped: this page read more slowly than the cluster changed"))
                switch follower.yield(notice) {
                case .enqueued: dropped[id] = 0
                case .dropped: dropped[id] = 1  // it pushed out one more
                case .terminated: break
                @unknown default: break
                }
            }
            switch follower.yield(event) {
            case .dropped: dropped[id, default: 0] += 1
            case .enqueued, .terminated: break
            @unknown default: break
            }
        }
    }
}
