import ChimeraCluster
import ChimeraGateway
import ChimeraTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

extension GatewayTests {
    @Test("aggregation endpoints: the Python Chimera's bodies, tree settings, probabilities, fan-out, wrong mode")
    func aggregation() async throws {
        let (columns, rows, labels) = try GatewayTests.testRows(114)
        func body(_ extra: [String: Any] = [:]) throws -> ByteBuffer {
            var object: [String: Any] = ["X_pred_columns": columns, "X_pred_rows": rows.map { $0.map(Double.init) }]
            object.merge(extra) { $1 }
            return ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: object))
        }
        @Sendable func accuracy(_ response: TestResponse) throws -> Double {
            let object = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
            let values = object?["y_pred_rows"] as? [Double] ?? []
            #expect(values.count == labels.count)
            var correct = 0
            for (value, label) in zip(values, labels) where Float(value > 0.5 ? 1 : 0) == label { correct += 1 }
            return Double(correct) / Double(labels.count)
        }
        let predictBody = try body()
        let probabilityBody = try body(["probabilities": true, "fan_out": true])
        try await GatewayTests.withGateway(mode: "aggregation") { client in
            try await client.execute(uri: "/v1/chimera/aggregation/predict", method: .post, body: predictBody) {
                response in
                #expect(response.status == .conflict)
                let (code, kind) = try GatewayTests.errorKind(response.body)
                #expect(code == 409 && kind == "NotFittedError")
            }
            try await client.execute(uri: "/v1/chimera/aggregation/fit", method: .post) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "{\"fit\":\"ok\"}")
            }
            try await client.execute(uri: "/v1/chimera/aggregation/predict", method: .post, body: predictBody) {
                response in
                #expect(response.status == .ok)
                let value = try accuracy(response)
                // Two bootstrapped trees (one per worker): 0.87–0.93 depending on the seed.
                #expect(value >= 0.85)
            }
            try await client.execute(
                uri: "/v1/chimera/aggregation/fit", method: .post,
                body: ByteBuffer(
                    string: "{\"trees_per_worker\": 8, \"max_features\": \"sqrt\", \"criterion\": \"entropy\"}")
            ) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/v1/chimera/aggregation/predict", method: .post, body: probabilityBody) {
                response in
                #expect(response.status == .ok)
                let object =
                    try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                #expect(object?["classes"] as? [Double] == [0, 1])
                let probabilities = object?["y_proba_rows"] as? [[Double]] ?? []
                let values = object?["y_pred_rows"] as? [Double] ?? []
                #expect(probabilities.count == values.count && !values.isEmpty)
                #expect(
                    zip(probabilities, values).allSatisfy { abs($0[1] - $1) < 1e-6 && abs($0[0] + $0[1] - 1) < 1e-4 })
            }
            // Bad tree settings and the other mode's endpoints are refused in the error shape.
            try await client.execute(
                uri: "/v1/chimera/aggregation/fit", method: .post,
                body: ByteBuffer(string: "{\"max_features\": \"half\"}")
            ) { response in
                #expect(response.status == .badRequest)
                let (code, kind) = try GatewayTests.errorKind(response.body)
                #expect(code == 400 && kind == "ValidationError")
            }
            try await client.execute(uri: "/v1/chimera/parameter-server/fit", method: .post) { response in
                #expect(response.status == .conflict)
                let (code, kind) = try GatewayTests.errorKind(response.body)
                #expect(code == 409 && kind == "WrongMode")
            }
            try await client.execute(uri: "/v1/chimera/cluster", method: .get) { response in
                let object =
                    try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                #expect(object?["mode"] as? String == "aggregation")
            }
        }
    }
}
