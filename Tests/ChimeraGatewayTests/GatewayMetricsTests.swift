import ChimeraCluster
import ChimeraGateway
import ChimeraTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

extension GatewayTests {
    @Test("/metrics: Prometheus text with requests by route, errors by kind and the cluster's figures")
    func metrics() async throws {
        try await GatewayTests.withGateway { client in
            try await client.execute(
                uri: "/v1/chimera/parameter-server/predict", method: .post, body: ByteBuffer(string: "{")
            ) {
                #expect($0.status == .badRequest)
            }
            try await client.execute(
                uri: "/v1/chimera/parameter-server/fit", method: .post, body: ByteBuffer(string: "{\"iterations\": 40}")
            ) { #expect($0.status == .ok) }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
                let text = String(buffer: response.body)
                let samples = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
                func value(_ prefix: String) -> Double? {
                    samples.first { $0.hasPrefix(prefix) }.flatMap { Double($0.split(separator: " ").last ?? "") }
                }
                #expect(value("chimera_master_up") == 1)
                #expect(value("chimera_workers_live") == 2)
                #expect(value("chimera_iterations_total") == 40)
                #expect(value("chimera_jobs_total{state=\"succeeded\"}") == 1)
                #expect((value("chimera_master_bytes_received_total") ?? 0) > 0)
                #expect(samples.contains { $0.hasPrefix("chimera_staleness_updates_total{staleness=\"0\"}") })
                #expect(samples.contains { $0.hasPrefix("chimera_worker_clock{worker=\"worker-1\"}") })
                #expect(samples.contains { $0.contains("chimera_gateway_errors_total") && $0.contains("InvalidJSON") })
                // Running totals are counters, levels are gauges.
                for name in [
                    "chimera_iterations_total", "chimera_jobs_total", "chimera_master_bytes_sent_total",
                    "chimera_staleness_updates_total",
                ] {
                    #expect(text.contains("# TYPE \(name) counter"), "\(name)")
                }
                #expect(text.contains("# TYPE chimera_workers_live gauge"))
                // Requests and latencies by route, from Hummingbird's middleware through swift-metrics.
                #expect(samples.contains { $0.contains("/v1/chimera/parameter-server/fit") && $0.contains("_count") })
            }
        }
    }
}
