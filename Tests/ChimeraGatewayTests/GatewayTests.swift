import ChimeraCluster
import ChimeraGateway
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("chimera-gateway with a real master and workers", .serialized)
struct GatewayTests {
    static let breastCancer = repositoryRoot.appendingPathComponent("deploy/data/breast-cancer")

    /// A master and two ready workers on the breast-cancer data, and a gateway bridged to it.
    static func withGateway(
        maxBodyBytes: Int = 1 << 20, mode: String = "parameter-server",
        _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        let cluster = try await blocking {
            let cluster = try LocalCluster(extraArguments: ["--mode", mode])
            for index in 1...2 {
                try cluster.startWorker(
                    name: "worker-\(index)", data: breastCancer.appendingPathComponent("worker-\(index)"))
            }
            try cluster.waitFor("2 ready workers") { $0.workers.filter(\.ready).count == 2 }
            return UncheckedBox(cluster)
        }
        var options = GatewayOptions()
        options.port = 0
        options.maxBodyBytes = maxBodyBytes
        let bridge = try MasterBridge(endpoint: cluster.value.controlEndpoint, size: 2)
        defer { bridge.shutdown() }
        try await buildGateway(options, bridge: bridge).test(.live, body)
        withExtendedLifetime(cluster) {}
    }

    static func testRows(_ count: Int) throws -> (columns: [String], rows: [[Float]], labels: [Float]) {
        let (columns, rows) = try ShardLayout.loadFeatures(breastCancer.appendingPathComponent("test/X_test.csv").path)
        let labels = try ShardLayout.loadLabels(breastCancer.appendingPathComponent("test/y_test.csv").path)
        return (columns, Array(rows.prefix(count)), Array(labels.prefix(count)))
    }

    static func errorKind(_ body: ByteBuffer) throws -> (Int, String) {
        let object = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        let details = object?["details"] as? [String: Any]
        #expect(object?["message"] is String)
        return (details?["errorCode"] as? Int ?? 0, details?["errorMessage"] as? String ?? "")
    }

    @Test("the Python Chimera's request bodies work unchanged: fit, then predict")
    func fitAndPredict() async throws {
        let (columns, rows, labels) = try Self.testRows(114)
        let predictBody = try JSONSerialization.data(withJSONObject: [
            "X_pred_columns": columns, "X_pred_rows": rows.map { $0.map(Double.init) },
        ])
        try await Self.withGateway { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
            // Predict before fit: a 4xx in the error shape.
            try await client.execute(
                uri: "/v1/chimera/parameter-server/predict", method: .post, body: ByteBuffer(bytes: predictBody)
            ) {
                response in
                #expect(response.status == .conflict)
                let (code, kind) = try Self.errorKind(response.body)
                #expect(code == 409 && kind == "NotFittedError")
            }
            // The original client posts no body to fit.
            try await client.execute(uri: "/v1/chimera/parameter-server/fit", method: .post) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "{\"fit\":\"ok\"}")
            }
            // Hyper-parameters in the body are an addition.
            try await client.execute(
                uri: "/v1/chimera/parameter-server/fit", method: .post,
                body: ByteBuffer(string: "{\"iterations\": 150, \"eta0\": 0.5, \"staleness\": 1}")
            ) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(
                uri: "/v1/chimera/parameter-server/predict", method: .post, body: ByteBuffer(bytes: predictBody)
            ) {
                response in
                #expect(response.status == .ok)
                let object =
                    try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                let predictions = try #require(object?["y_pred_rows"] as? [Double])
                #expect(predictions.count == labels.count)
                let accuracy = Double(zip(predictions, labels).filter { $0 == Double($1) }.count) / Double(labels.count)
                #expect(accuracy >= 0.93, "accuracy through HTTP \(accuracy)")
            }
            try await client.execute(uri: "/v1/chimera/cluster", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("\"ready\":true"))
            }
        }
    }

    @Test("the optimizers through HTTP: adam, adamw with warm-up, nesterov each fit the breast-cancer data to ≥ 0.9")
    func optimizers() async throws {
        let (columns, rows, labels) = try Self.testRows(114)
        let predictBody = try JSONSerialization.data(withJSONObject: [
            "X_pred_columns": columns, "X_pred_rows": rows.map { $0.map(Double.init) },
        ])
        try await Self.withGateway { client in
            for body in [
                "{\"optimizer\": \"adam\", \"eta0\": 0.01, \"iterations\": 100}",
                "{\"optimizer\": \"adamw\", \"eta0\": 0.01, \"weight_decay\": 0.01, \"warmup_steps\": 10, \"iterations\": 100}",
                "{\"optimizer\": \"nesterov\", \"momentum\": 0.9, \"eta0\": 0.05, \"iterations\": 100}",
                "{\"optimizer\": \"adam\", \"eta0\": 0.01, \"staleness\": 2, \"iterations\": 100}",
            ] {
                try await client.execute(
                    uri: "/v1/chimera/parameter-server/fit", method: .post, body: ByteBuffer(string: body)
                ) {
                    #expect($0.status == .ok, "\(body)")
                }
                try await client.execute(
                    uri: "/v1/chimera/parameter-server/predict", method: .post, body: ByteBuffer(bytes: predictBody)
                ) { response in
                    let object =
                        try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                    let predicted = (object?["y_pred_rows"] as? [Double]) ?? []
                    let correct = zip(predicted, labels).filter { $0 == Double($1) }.count
                    #expect(Double(correct) / Double(labels.count) >= 0.9, "\(body): \(correct)/\(labels.count)")
                }
            }
            // Nesterov without momentum is refused with the reason.
            try await client.execute(
                uri: "/v1/chimera/parameter-server/fit", method: .post,
                body: ByteBuffer(string: "{\"optimizer\": \"nesterov\"}")
            ) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("needs momentum"))
            }
        }
    }

    @Test("asynchronous jobs: 202 with an id, progress with clocks and staleness, cancel, unknown id 404")
    func jobs() async throws {
        try await Self.withGateway { client in
            let id = try await client.execute(
                uri: "/v1/chimera/jobs", method: .post,
                body: ByteBuffer(string: "{\"iterations\": 1000000, \"staleness\": 2}")
            ) { response -> Int in
                #expect(response.status == .accepted)
                let object =
                    try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                #expect(object?["state"] as? String == "running")
                return object?["job_id"] as? Int ?? 0
            }
            #expect(id > 0)
            var iteration = 0
            for _ in 0..<600 where iteration < 10 {
                iteration = try await client.execute(uri: "/v1/chimera/jobs/\(id)", method: .get) { response -> Int in
                    #expect(response.status == .ok)
                    let object =
                        try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                    #expect((object?["clocks"] as? [Any])?.count == 2)
                    #expect(object?["staleness_histogram"] is [Int])
                    return object?["iteration"] as? Int ?? 0
                }
                if iteration < 10 { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(iteration >= 10)
            try await client.execute(uri: "/v1/chimera/jobs/\(id)/cancel", method: .post) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("\"state\":\"cancelled\""))
            }
            try await client.execute(uri: "/v1/chimera/jobs/999", method: .get) { response in
                #expect(response.status == .notFound)
                let (code, kind) = try Self.errorKind(response.body)
                #expect(code == 404 && kind == "UnknownJob")
            }
        }
    }

    @Test("bad input gets 4xx in the error shape and nothing breaks")
    func badInput() async throws {
        let (columns, rows, _) = try Self.testRows(2)
        try await Self.withGateway(maxBodyBytes: 4096) { client in
            try await client.execute(uri: "/v1/chimera/parameter-server/fit", method: .post) {
                #expect($0.status == .ok)
            }
            let cases: [(String, String, Int, String)] = [
                ("/v1/chimera/parameter-server/predict", "{not json", 400, "InvalidJSON"),
                (
                    "/v1/chimera/parameter-server/predict", "{\"X_pred_columns\": [\"a\"], \"X_pred_rows\": [[1, 2]]}",
                    400, "ValidationError"
                ),
                (
                    "/v1/chimera/parameter-server/predict",
                    "{\"X_pred_columns\": [\"nonsense\"], \"X_pred_rows\": [[1]]}", 400, "UnknownColumn"
                ),
                ("/v1/chimera/parameter-server/fit", "{\"model\": \"forest\"}", 400, "ValidationError"),
                ("/v1/chimera/parameter-server/fit", "[1, 2", 400, "InvalidJSON"),
                ("/v1/chimera/parameter-server/predict", String(repeating: " ", count: 5000), 413, "PayloadTooLarge"),
            ]
            for (uri, body, status, expectedKind) in cases {
                try await client.execute(uri: uri, method: .post, body: ByteBuffer(string: body)) { response in
                    #expect(response.status.code == status, "\(uri) \(body.prefix(40))")
                    let (code, kind) = try Self.errorKind(response.body)
                    #expect(code == status && kind == expectedKind, "\(kind)")
                }
            }
            // Fit bodies are checked against the fit vocabulary: each error names the field.
            let fits: [(String, String)] = [
                ("{\"iterationz\": 5}", "unknown fit setting iterationz (did you mean iterations?)"),
                ("{\"iterations\": \"5\"}", "iterations must be an integer in 1…10000000, got the text \"5\""),
                (
                    "{\"max_depth\": 3}",
                    "max_depth is a setting of bagging (aggregation) fits; this master runs parameter-server fits"
                ),
                ("{\"model\": \"tree_classifier\"}", "model: tree_classifier is a bagging model"),
                ("{\"eta0\": 1e308}", "eta0 must be a number in (0, 1e+38]"),
            ]
            for (body, message) in fits {
                for uri in ["/v1/chimera/parameter-server/fit", "/v1/chimera/jobs"] {
                    try await client.execute(uri: uri, method: .post, body: ByteBuffer(string: body)) { response in
                        #expect(response.status.code == 400, "\(uri) \(body)")
                        let object =
                            try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))
                            as? [String: Any]
                        let text = object?["message"] as? String ?? ""
                        #expect(text.hasPrefix(message), "\(text)")
                    }
                }
            }
            // Still serving after all of that.
            let good = try JSONSerialization.data(withJSONObject: [
                "X_pred_columns": columns, "X_pred_rows": rows.map { $0.map(Double.init) },
            ])
            try await client.execute(
                uri: "/v1/chimera/parameter-server/predict", method: .post, body: ByteBuffer(bytes: good)
            ) {
                #expect($0.status == .ok)
            }
        }
    }

    @Test("a master that does not answer: fit gives 503 at once, other requests 504 after the timeout")
    func masterUnreachable() async throws {
        var options = GatewayOptions()
        options.port = 0
        options.requestTimeoutSeconds = 0.5
        // Nothing listens there: requests time out and the bridge replaces its socket.
        let bridge = try MasterBridge(endpoint: "tcp://127.0.0.1:9", size: 1)
        defer { bridge.shutdown() }
        try await buildGateway(options, bridge: bridge).test(.live) { client in
            try await client.execute(uri: "/v1/chimera/parameter-server/fit", method: .post) { response in
                #expect(response.status == .serviceUnavailable)
                let (code, kind) = try Self.errorKind(response.body)
                #expect(code == 503 && kind == "MasterUnavailable")
            }
            for _ in 0..<2 {
                try await client.execute(uri: "/v1/chimera/cluster", method: .get) { response in
                    #expect(response.status == .gatewayTimeout)
                    let (code, kind) = try Self.errorKind(response.body)
                    #expect(code == 504 && kind == "MasterTimeout")
                }
            }
        }
    }
}

/// Carries a non-Sendable value out of a blocking body (used on one task only).
final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

@Suite("Gateway authentication")
struct GatewayAuthenticationTests {
    @Test("with a bearer token, requests without it get 401; /healthz stays open")
    func bearerToken() async throws {
        var options = GatewayOptions()
        options.port = 0
        options.bearerToken = "s3cret-token"
        options.requestTimeoutSeconds = 0.5
        let bridge = try MasterBridge(endpoint: "tcp://127.0.0.1:9", size: 1)
        defer { bridge.shutdown() }
        try await buildGateway(options, bridge: bridge).test(.live) { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            for headers: HTTPFields in [[:], [.authorization: "Bearer wrong"], [.authorization: "s3cret-token"]] {
                try await client.execute(uri: "/v1/chimera/parameter-server/fit", method: .post, headers: headers) {
                    response in
                    #expect(response.status == .unauthorized)
                    let (code, kind) = try GatewayTests.errorKind(response.body)
                    #expect(code == 401 && kind == "Unauthorized")
                }
            }
            // The right token gets through to the (silent) master: 504, not 401.
            try await client.execute(
                uri: "/v1/chimera/cluster", method: .get, headers: [.authorization: "Bearer s3cret-token"]
            ) {
                #expect($0.status == .gatewayTimeout)
            }
        }
    }
}

@Suite("OpenAPI document")
struct OpenAPITests {
    @Test("it is OpenAPI 3, every documented route is served, and every served route is documented")
    func document() async throws {
        var options = GatewayOptions()
        options.port = 0
        options.requestTimeoutSeconds = 0.3
        options.fitTimeoutSeconds = 0.3
        let bridge = try MasterBridge(endpoint: "tcp://127.0.0.1:9", size: 1)
        defer { bridge.shutdown() }
        try await buildGateway(options, bridge: bridge).test(.live) { client in
            let document = try await client.execute(uri: "/openapi.json", method: .get) { response in
                #expect(response.status == .ok)
                return try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
            }
            #expect((document?["openapi"] as? String)?.hasPrefix("3.") == true)
            let paths = try #require(document?["paths"] as? [String: [String: Any]])
            let schemas = try #require((document?["components"] as? [String: Any])?["schemas"] as? [String: Any])
            // Every $ref resolves.
            let text = String(decoding: try JSONSerialization.data(withJSONObject: paths), as: UTF8.self)
            for reference in text.components(separatedBy: "#/components/schemas/").dropFirst() {
                let name = String(reference.prefix { $0.isLetter })
                #expect(schemas[name] != nil, "unresolved schema \(name)")
            }
            #expect(
                Set(paths.keys) == [
                    "/healthz", "/openapi.json", "/v1/chimera/cluster", "/v1/chimera/parameter-server/fit",
                    "/v1/chimera/parameter-server/predict", "/v1/chimera/aggregation/fit",
                    "/v1/chimera/aggregation/predict",
                    "/v1/chimera/jobs", "/v1/chimera/jobs/{id}", "/v1/chimera/jobs/{id}/cancel", "/metrics", "/readyz",
                    "/", "/dashboard", "/v1/chimera/events", "/v1/chimera/sweeps", "/v1/chimera/sweeps/{name}",
                ])
            // Each documented operation exists on the router (anything but 404/405; a sweep that is not
            // there is the handler's own 404). The event stream never ends: the browser tests follow it.
            for (path, operations) in paths where path != "/v1/chimera/events" {
                for method in operations.keys {
                    let concrete = path.replacingOccurrences(of: "{id}", with: "7").replacingOccurrences(
                        of: "{name}", with: "missing")
                    try await client.execute(uri: concrete, method: method == "get" ? .get : .post) { response in
                        let handlerSaid = String(buffer: response.body).contains("no sweep named")
                        #expect(
                            (response.status != .notFound || handlerSaid) && response.status != .methodNotAllowed,
                            "\(method) \(path)")
                    }
                }
            }
            // An unknown route is answered in the error shape too.
            try await client.execute(uri: "/v1/chimera/nothing-here", method: .get) { response in
                #expect(response.status == .notFound)
                let (code, kind) = try GatewayTests.errorKind(response.body)
                #expect(code == 404 && kind == "NotFound")
            }
        }
    }
}
