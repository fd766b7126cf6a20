import ChimeraCluster
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Testing

/// A diverging fit through real processes: it ends failed with a named cause, every worker stays
/// registered and ready, and the next fit succeeds.
@Suite("Divergence, end to end", .serialized)
struct DivergenceProcessTests {
    static func request(eta0: Double, rawFeatures: Bool = false, backoff: Bool = false) -> Chimera_V1_FitRequest {
        var request = Chimera_V1_FitRequest()
        request.kind = .parameterServer
        request.config.model = .linearRegression
        request.config.eta0 = eta0
        request.config.maxIterations = 100
        request.config.rawFeatures = rawFeatures
        if backoff {
            request.config.onDivergence = .backoff
            request.config.maxBackoffs = 20
        }
        return request
    }

    /// The fit must be refused as diverged (not hang, not succeed); returns the error text.
    static func expectDiverged(_ client: MasterClient, _ request: Chimera_V1_FitRequest) -> String {
        do {
            let reply = try client.fit(request, timeoutMilliseconds: 60_000)
            Issue.record("a diverging fit answered \(reply.state), loss \(reply.report.finalLoss)")
            return ""
        } catch MasterClientError.refused(let code, let message) {
            #expect(code == .diverged, "\(message)")
            return message
        } catch {
            Issue.record("unexpected error \(error)")
            return ""
        }
    }

    @Test(
        "too large a step (standardised, raw features, overflowing) fails the fit; workers stay; the next fit succeeds")
    func divergingFits() async throws {
        try await blocking {
            // The committed breast-cancer shards: raw features up to ~4,000 (areas), as a user's data is.
            let cluster = try ParameterServerProcessTests.cluster(
                workers: 4, data: ParameterServerProcessTests.breastCancer)
            let client = try cluster.client()

            let exploding = Self.expectDiverged(client, Self.request(eta0: 5))
            #expect(exploding.contains("diverged at iteration") && exploding.contains("eta0 ≤"), "\(exploding)")
            let raw = Self.expectDiverged(client, Self.request(eta0: 0.5, rawFeatures: true))
            #expect(raw.contains("standardised features"), "\(raw)")
            _ = Self.expectDiverged(client, Self.request(eta0: 1e30))

            // An eta0 that is not even a float32 is a bad request, not a fit.
            #expect(throws: MasterClientError.self) {
                try client.fit(Self.request(eta0: 1e308), timeoutMilliseconds: 30_000)
            }

            let status = try client.status()
            #expect(
                status.workers.count == 4 && status.workers.allSatisfy { $0.alive && $0.ready }, "\(status.workers)")
            #expect(status.jobsByState["failed"] == 3)

            let good = try client.fit(Self.request(eta0: 0.05), timeoutMilliseconds: 60_000)
            #expect(good.state == .succeeded && good.report.iterations == 100)

            // Backoff: the same step that failed now recovers by halving.
            let backedOff = try client.fit(Self.request(eta0: 5, backoff: true), timeoutMilliseconds: 60_000)
            #expect(backedOff.state == .succeeded, "\(backedOff.report)")
            #expect(!backedOff.report.backoffs.isEmpty)
            #expect(backedOff.report.finalLoss.isFinite)
        }
    }
}
