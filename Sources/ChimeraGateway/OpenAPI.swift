import Foundation
import ChimeraCluster

/// The gateway's OpenAPI 3.0 document, built from the same route list the router registers.
enum OpenAPI {
    struct Route {
        let method: String
        let path: String
        let summary: String
        let requestSchema: String?
        let responseSchema: String
        let errors: [Int]
        var contentType = "application/json"
    }

    static let routes: [Route] = [
        Route(
            method: "get", path: "/healthz", summary: "Whether the master answers (503 MasterUnavailable or CurveKeyRefused if not)",
            requestSchema: nil, responseSchema: "Health", errors: [503]),
        Route(
            method: "get", path: "/readyz", summary: "Whether a fit could start now: the master answers and at least one worker is ready",
            requestSchema: nil, responseSchema: "Health", errors: [503]),
        Route(
            method: "post", path: "/v1/chimera/parameter-server/fit",
            summary: "Fit on the cluster (blocks until done); the body is optional", requestSchema: "FitInput",
            responseSchema: "FitOK", errors: [400, 401, 409, 413, 503, 504]),
        Route(
            method: "post", path: "/v1/chimera/parameter-server/predict", summary: "Predict rows with the fitted model",
            requestSchema: "PredictInput", responseSchema: "PredictOutput", errors: [400, 401, 409, 413, 503, 504]),
        Route(
            method: "post", path: "/v1/chimera/aggregation/fit",
            summary: "Fit bagged decision trees: each worker fits trees on bootstraps of its shard (blocks until done)",
            requestSchema: "FitInput", responseSchema: "FitOK", errors: [400, 401, 409, 413, 503, 504]),
        Route(
            method: "post", path: "/v1/chimera/aggregation/predict",
            summary: "Predict with the ensemble: mean P(class 1) for binary classification, labels for more classes, values for regression",
            requestSchema: "PredictInput", responseSchema: "PredictOutput", errors: [400, 401, 409, 413, 503, 504]),
        Route(
            method: "get", path: "/v1/chimera/cluster", summary: "Workers, liveness, clocks, rejected messages",
            requestSchema: nil, responseSchema: "Cluster", errors: [401, 504]),
        Route(
            method: "post", path: "/v1/chimera/jobs", summary: "Start an asynchronous fit (202 with its id)",
            requestSchema: "FitInput", responseSchema: "Job", errors: [400, 401, 409, 413, 503, 504]),
        Route(
            method: "get", path: "/v1/chimera/jobs/{id}", summary: "A job's state, iteration, loss, clocks and staleness",
            requestSchema: nil, responseSchema: "Job", errors: [400, 401, 404, 504]),
        Route(
            method: "post", path: "/v1/chimera/jobs/{id}/cancel", summary: "Cancel a running job", requestSchema: nil,
            responseSchema: "Job", errors: [400, 401, 404, 504]),
        Route(
            method: "get", path: "/metrics",
            summary: "Prometheus text: requests and latencies by route, errors by kind, workers, iterations/s, barrier wait, staleness, bytes",
            requestSchema: nil, responseSchema: "Metrics", errors: [401], contentType: "text/plain"),
        Route(method: "get", path: "/openapi.json", summary: "This document", requestSchema: nil, responseSchema: "Document", errors: []),
    ]

    static var schemas: [String: Any] { [
        "Health": object(
            ["status": ["type": "string"], "master": ["type": "string"], "ready_workers": ["type": "integer"]], required: ["status"]),
        "FitOK": object(["fit": ["type": "string", "enum": ["ok"]]], required: ["fit"]),
        "FitInput": FitVocabulary.jsonSchema,
        "PredictInput": object(
            [
                "X_pred_columns": ["type": "array", "items": ["type": "string"]],
                "X_pred_rows": ["type": "array", "items": ["type": "array", "items": ["type": "number"]]],
                "probabilities": ["type": "boolean"], "fan_out": ["type": "boolean"],
            ], required: ["X_pred_columns", "X_pred_rows"]),
        "PredictOutput": object(
            [
                // Class names when the labels were names, numbers otherwise.
                "y_pred_rows": ["type": "array", "items": ["oneOf": [["type": "number"], ["type": "string"]]]],
                "classes": ["type": "array", "items": ["oneOf": [["type": "number"], ["type": "string"]]]],
                "y_proba_rows": ["type": "array", "items": ["type": "array", "items": ["type": "number"]]],
            ], required: ["y_pred_rows"]),
        "Cluster": object([
            "workers": [
                "type": "array",
                "items": object([
                    "id": ["type": "integer"], "name": ["type": "string"], "alive": ["type": "boolean"],
                    "ready": ["type": "boolean"], "clock": ["type": "integer"], "pid": ["type": "integer"],
                    "host": ["type": "string"],
                ]),
            ],
            "mode": ["type": "string", "enum": ["parameter-server", "aggregation"]],
            "job_id": ["type": "integer"], "iteration": ["type": "integer"], "loss": ["type": "number"],
            "rejected_messages": ["type": "integer"],
        ]),
        "Document": ["type": "object"],
        "Metrics": ["type": "string", "description": "Prometheus text exposition format 0.0.4"],
        "Job": object(
            [
                "job_id": ["type": "integer"],
                "state": ["type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled", "unknown"]],
                "iteration": ["type": "integer"], "loss": ["type": "number"], "wall_seconds": ["type": "number"],
                "clocks": [
                    "type": "array",
                    "items": object(["worker": ["type": "string"], "clock": ["type": "integer"], "alive": ["type": "boolean"]]),
                ],
                "staleness_histogram": ["type": "array", "items": ["type": "integer"]], "error": ["type": "string"],
                "members": ["type": "integer"], "failed_workers": ["type": "array", "items": ["type": "string"]], "backoffs": ["type": "array", "items": ["type": "string"]],
            ], required: ["job_id", "state"]),
        "Error": object(
            [
                "message": ["type": "string"],
                "details": object(
                    ["errorCode": ["type": "integer"], "errorMessage": ["type": "string"]], required: ["errorCode", "errorMessage"]),
            ], required: ["message", "details"]),
    ] }

    static func object(_ properties: [String: Any], required: [String] = []) -> [String: Any] {
        var schema: [String: Any] = ["type": "object", "properties": properties]
        if !required.isEmpty { schema["required"] = required }
        return schema
    }

    static func document() -> [String: Any] {
        var paths: [String: [String: Any]] = [:]
        for route in routes {
            var responses: [String: Any] = [
                "200": [
                    "description": "OK",
                    "content": [route.contentType: ["schema": ["$ref": "#/components/schemas/\(route.responseSchema)"]]],
                ]
            ]
            for code in route.errors {
                responses["\(code)"] = [
                    "description": "Error", "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]],
                ]
            }
            var operation: [String: Any] = ["summary": route.summary, "responses": responses]
            if let request = route.requestSchema {
                operation["requestBody"] = [
                    "required": route.path.hasSuffix("/predict"),
                    "content": ["application/json": ["schema": ["$ref": "#/components/schemas/\(request)"]]],
                ]
            }
            if route.errors.contains(401) { operation["security"] = [["bearer": [String]()], [String: Any]()] }
            if route.path.contains("{id}") {
                operation["parameters"] = [["name": "id", "in": "path", "required": true, "schema": ["type": "integer", "minimum": 1]]]
            }
            paths[route.path, default: [:]][route.method] = operation
        }
        return [
            "openapi": "3.0.3",
            "info": ["title": "chimera-gateway", "version": "0.1.0", "description": "The Python Chimera's REST API, bridged to a Chimera master over ZeroMQ."],
            "paths": paths,
            "components": [
                "schemas": schemas,
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"]],
            ],
        ]
    }

    static func json() -> Data {
        (try? JSONSerialization.data(withJSONObject: document(), options: [.sortedKeys, .prettyPrinted])) ?? Data("{}".utf8)
    }
}
