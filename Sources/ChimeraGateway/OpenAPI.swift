import ChimeraCluster
import Foundation
import Hummingbird

/// The gateway's OpenAPI 3.0 document, written from the routes the router serves (`GatewayRoute`).
enum OpenAPI {
    static var schemas: [String: Any] {
        [
            "Health": object(
                ["status": ["type": "string"], "master": ["type": "string"], "ready_workers": ["type": "integer"]],
                required: ["status"]),
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
                        "host": ["type": "string"], "stage": ["type": "string"], "rows": ["type": "integer"],
                        "silent_seconds": [
                            "type": "number", "description": "since the master last heard from it (alive workers)",
                        ],
                    ]),
                ],
                "mode": ["type": "string", "enum": ["parameter-server", "aggregation"]],
                "job_id": [
                    "type": "integer", "description": "the running job, or the last one when idle (0 before the first)",
                ],
                "job_state": ["type": "string", "enum": ["running", "succeeded", "failed", "cancelled", "none"]],
                "iteration": ["type": "integer"], "loss": ["type": "number"],
                "rejected_messages": ["type": "integer"],
                "rejected_by_kind": ["type": "object", "additionalProperties": ["type": "integer"]],
            ]),
            "JobStarted": object(
                ["job_id": ["type": "integer"], "state": ["type": "string", "enum": ["running"]]],
                required: ["job_id", "state"]),
            "Document": ["type": "object"],
            "Page": ["type": "string", "description": "an HTML page"],
            "Events": [
                "type": "string",
                "description":
                    "text/event-stream. Each message: `event: <name>` and one `data: <JSON>` line. snapshot {cluster, jobs, progress, losses, master_reachable} first; cluster {mode, workers, bytes_per_second, rejected_messages, time} when the workers change and each second; worker {change: joined|died|returned, worker, time}; progress {job, clocks [{worker, clock, alive, barrier_wait_seconds, barrier_wait_share}], staleness_histogram, bytes_per_second, time} each poll (4 a second) of a running job; loss {job_id, points [[iteration, seconds, loss]]}; job_end {job}; dropped {count, message} when this follower read too slowly and lost events. job: {job_id, state, kind, model, algorithm, staleness, parallelism, iteration, max_iterations, loss, iterations_per_second, eta_seconds, wall_seconds, error, members}. time: seconds since the epoch.",
            ],
            "Sweeps": object([
                "directory": ["type": "string"],
                "sweeps": [
                    "type": "array",
                    "items": object([
                        "name": ["type": "string"], "runs": ["type": "integer"], "modified": ["type": "number"],
                    ]),
                ],
            ]),
            "Metrics": ["type": "string", "description": "Prometheus text exposition format 0.0.4"],
            "Job": object(
                [
                    "job_id": ["type": "integer"],
                    "state": [
                        "type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled", "none"],
                    ],
                    "iteration": ["type": "integer"], "loss": ["type": "number"], "wall_seconds": ["type": "number"],
                    "clocks": [
                        "type": "array",
                        "items": object([
                            "worker": ["type": "string"], "clock": ["type": "integer"], "alive": ["type": "boolean"],
                        ]),
                    ],
                    "staleness_histogram": ["type": "array", "items": ["type": "integer"]], "error": ["type": "string"],
                    "members": ["type": "integer"], "failed_workers": ["type": "array", "items": ["type": "string"]],
                    "backoffs": ["type": "array", "items": ["type": "string"]],
                ], required: ["job_id", "state"]),
            "Error": object(
                [
                    "message": ["type": "string"],
                    "details": object(
                        ["errorCode": ["type": "integer"], "errorMessage": ["type": "string"]],
                        required: ["errorCode", "errorMessage"]),
                ], required: ["message", "details"]),
        ]
    }

    static func object(_ properties: [String: Any], required: [String] = []) -> [String: Any] {
        var schema: [String: Any] = ["type": "object", "properties": properties]
        if !required.isEmpty { schema["required"] = required }
        return schema
    }

    static func document(_ routes: [GatewayRoute], basePath: String = "") -> [String: Any] {
        var paths: [String: [String: Any]] = [:]
        for route in routes {
            var responses: [String: Any] = [
                "200": [
                    "description": "OK",
                    "content": [
                        route.contentType: ["schema": ["$ref": "#/components/schemas/\(route.responseSchema)"]]
                    ],
                ]
            ]
            for code in route.errors {
                responses["\(code)"] = [
                    "description": "Error",
                    "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]],
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
            let parameters = route.path.split(separator: "{").dropFirst().compactMap { $0.split(separator: "}").first }
            if !parameters.isEmpty {
                operation["parameters"] = parameters.map { name -> [String: Any] in
                    let schema: [String: Any] = name == "id" ? ["type": "integer", "minimum": 1] : ["type": "string"]
                    return ["name": String(name), "in": "path", "required": true, "schema": schema]
                }
            }
            paths[route.path, default: [:]][route.method.rawValue.lowercased()] = operation
        }
        var document: [String: Any] = [
            "openapi": "3.0.3",
            "info": [
                "title": "chimera-gateway", "version": "0.1.0",
                "description": "The Python Chimera's REST API, bridged to a Chimera master over ZeroMQ.",
            ],
            "paths": paths,
            "components": [
                "schemas": schemas,
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"]],
            ],
        ]
        if !basePath.isEmpty { document["servers"] = [["url": basePath]] }
        return document
    }

    static func json(_ routes: [GatewayRoute], basePath: String = "") -> Data {
        (try? JSONSerialization.data(
            withJSONObject: document(routes, basePath: basePath), options: [.sortedKeys, .prettyPrinted]))
            ?? Data("{}".utf8)
    }
}
