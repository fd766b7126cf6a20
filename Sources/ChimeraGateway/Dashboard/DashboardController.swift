import ChimeraCluster
import Foundation
import Hummingbird
import ServiceLifecycle

/// The live dashboard: the page itself (`/`, `/dashboard`: no data in it, so served without the
/// token), the event stream it follows, and the finished sweeps under `--sweeps-dir`.
struct DashboardController: GatewayController {
    let hub: EventHub
    let basePath: String
    let sweeps: URL?

    var routes: [GatewayRoute] {
        let (hub, sweeps) = (hub, sweeps)
        let page = DashboardPage.html(basePath: basePath)
        let serve: GatewayRoute.Handler = { _, _ in
            Response(
                status: .ok,
                headers: [
                    .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                    // Everything the page needs comes from this gateway.
                    .contentSecurityPolicy:
                        "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; frame-src 'self' blob: data:",
                ],
                body: .init(byteBuffer: ByteBuffer(string: page)))
        }
        return [
            GatewayRoute(
                method: .get, path: "/", summary: "The live dashboard (an HTML page; it asks for the token itself)",
                responseSchema: "Page", errors: [], contentType: "text/html", handler: serve),
            GatewayRoute(
                method: .get, path: "/dashboard", summary: "The live dashboard (the same page)",
                responseSchema: "Page", errors: [], contentType: "text/html", handler: serve),
            GatewayRoute(
                method: .get, path: "/v1/chimera/events",
                summary:
                    "Server-Sent Events: snapshot first, then cluster, worker (joined/died/returned), progress, loss, job_end, and dropped when this stream read too slowly",
                responseSchema: "Events", errors: [401], contentType: "text/event-stream"
            ) { _, _ in
                let stream = await hub.follow()
                return Response(
                    status: .ok,
                    headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                    body: ResponseBody { writer in
                        try await withGracefulShutdownHandler {
                            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
                            for await event in stream {
                                try await writer.write(ByteBuffer(string: event.text))
                            }
                        } onGracefulShutdown: {
                            Task { await hub.close() }
                        }
                        try await writer.finish(nil)
                    })
            },
            GatewayRoute(
                method: .get, path: "/v1/chimera/sweeps",
                summary: "The finished sweeps under the gateway's --sweeps-dir (newest first)",
                responseSchema: "Sweeps", errors: [401]
            ) { _, _ in
                try json(SweepListing(directory: sweeps))
            },
            GatewayRoute(
                method: .get, path: "/v1/chimera/sweeps/{name}",
                summary: "A finished sweep's report (its report.html)", responseSchema: "Page", errors: [401, 404],
                contentType: "text/html"
            ) { _, context in
                let name = context.parameters.get("name") ?? ""
                guard let report = SweepListing.report(named: name, in: sweeps),
                    let data = FileManager.default.contents(atPath: report.path)
                else {
                    throw GatewayError(.notFound, "NotFound", "no sweep named \(name.debugDescription)")
                }
                return Response(
                    status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(bytes: data)))
            },
        ]
    }
}

/// The sweeps (`chimera sweep` output folders: a report.html and sweep.json) directly under a folder.
struct SweepListing: Codable, Sendable {
    struct Sweep: Codable, Sendable {
        var name: String
        var runs: Int
        /// Seconds since the epoch.
        var modified: Double
    }

    var directory: String?
    var sweeps: [Sweep]

    init(directory: URL?) {
        self.directory = directory?.path
        guard let directory,
            let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path)
        else {
            sweeps = []
            return
        }
        sweeps = names.compactMap { name -> Sweep? in
            guard let report = Self.report(named: name, in: directory) else { return nil }
            let modified =
                (try? FileManager.default.attributesOfItem(atPath: report.path)[.modificationDate] as? Date)?
                .timeIntervalSince1970 ?? 0
            let runs =
                (try? JSONSerialization.jsonObject(
                    with: Data(contentsOf: directory.appendingPathComponent(name).appendingPathComponent("sweep.json"))
                ) as? [Any])?.count ?? 0
            return Sweep(name: name, runs: runs, modified: modified)
        }.sorted { ($0.modified, $0.name) > ($1.modified, $1.name) }
    }

    /// The report of the sweep `name`: a plain folder name under `directory`, nothing above it.
    static func report(named name: String, in directory: URL?) -> URL? {
        guard let directory, !name.isEmpty, !name.hasPrefix("."), !name.contains("/"), !name.contains("\\")
        else { return nil }
        let report = directory.appendingPathComponent(name).appendingPathComponent("report.html")
        return FileManager.default.fileExists(atPath: report.path) ? report : nil
    }
}
