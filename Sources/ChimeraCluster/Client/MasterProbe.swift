package import ChimeraWire
import Dispatch
import Synchronization
public import ZeroMQ

/// Watches a master from a thread and a socket of its own: a status request every `interval`. Clients
/// waiting on the master (a synchronous fit may rightly take an hour) give up as soon as the probe
/// says the master is gone — no answer for `silence`, or our CURVE key refused — instead of waiting
/// out their timeout. It also keeps the last status, for health and readiness checks.
public final class MasterProbe: Sendable {
    public let endpoint: String
    private let silenceMilliseconds: Int64
    private let lastAnswer: Atomic<Int64>
    private let refused = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let status = Mutex<Chimera_V1_ClusterStatus?>(nil)
    private let finished = DispatchSemaphore(value: 0)

    public init(
        endpoint: String, context: Context, curve: CurveClientSettings? = nil, intervalMilliseconds: Int = 500,
        silenceMilliseconds: Int = 3_000
    ) {
        self.endpoint = endpoint
        self.silenceMilliseconds = Int64(silenceMilliseconds)
        lastAnswer = Atomic(Int64(monotonicSeconds() * 1000))
        DedicatedThread.start(name: "chimera-probe") { [self] in
            let channel = RequestChannel(context: context, endpoint: endpoint, curve: curve)
            let request = WireMessage(.statusRequest(Chimera_V1_StatusRequest()))
            while !stopping.load(ordering: .acquiring) {
                let began = monotonicSeconds()
                let reply = try? channel.request(
                    request, timeoutMilliseconds: Int32(intervalMilliseconds),
                    abandon: { self.stopping.load(ordering: .acquiring) })
                if let reply {
                    lastAnswer.store(Int64(monotonicSeconds() * 1000), ordering: .releasing)
                    refused.store(false, ordering: .releasing)
                    if case .clusterStatus(let found) = reply.body { status.withLock { $0 = found } }
                } else {
                    refused.store(channel.handshakeRefused, ordering: .releasing)
                }
                var rest = Double(intervalMilliseconds) / 1000 - (monotonicSeconds() - began)
                while rest > 0 && !stopping.load(ordering: .acquiring) {
                    usleep(20_000)
                    rest -= 0.02
                }
            }
            finished.signal()
        }
    }

    /// Why requests to the master cannot succeed now (nil: it answers).
    public var problem: MasterClientError? {
        if refused.load(ordering: .acquiring) { return .curveRefused(endpoint: endpoint) }
        let silent = Int64(monotonicSeconds() * 1000) - lastAnswer.load(ordering: .acquiring)
        return silent > silenceMilliseconds ? .unreachable(endpoint: endpoint, milliseconds: Int(silent)) : nil
    }

    /// The master's last answered status (nil before the first answer).
    package var lastStatus: Chimera_V1_ClusterStatus? { status.withLock { $0 } }

    public func stop() {
        if !stopping.exchange(true, ordering: .acquiringAndReleasing) { finished.wait() }
    }

    deinit { stop() }
}

#if canImport(Glibc)
    import Glibc
#endif
