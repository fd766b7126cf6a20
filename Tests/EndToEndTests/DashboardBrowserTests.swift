import ChimeraCluster
import ChimeraTestSupport
import ChimeraWire
import Foundation
import Testing

/// The dashboard in a real headless Chromium, against a real master, workers and gateway.
@Suite(
    "the dashboard in headless Chromium", .serialized,
    .enabled(
        if: HeadlessBrowser.executable != nil || ProcessInfo.processInfo.environment["CI"] != nil,
        "no chromium on PATH: deploy/install-deps.sh --browser installs Debian's (CI always runs these)"))
struct DashboardBrowserTests {
    static let data = repositoryRoot.appendingPathComponent("deploy/data/breast-cancer")
    /// Screenshots land here (the test's output folder, beside the build).
    static let output = repositoryRoot.appendingPathComponent(".build/test-output/dashboard")

    /// A master, three workers (the third a straggler), and a gateway process in front of them.
    final class Stack {
        let cluster: LocalCluster
        let gateway: ChildProcess
        let url: String

        init(gatewayArguments: [String] = [], masterArguments: [String] = [], straggler: Int = 30) throws {
            cluster = try LocalCluster(extraArguments: masterArguments)
            for index in 1...3 {
                try cluster.startWorker(
                    name: "worker-\(index)", data: DashboardBrowserTests.data.appendingPathComponent("worker-\(index)"),
                    delayMilliseconds: index == 3 ? straggler : 0)
            }
            try cluster.waitFor("3 ready workers") { $0.workers.filter(\.ready).count == 3 }
            gateway = try ChildProcess(
                name: "gateway",
                arguments: ["gateway", "--master", cluster.controlEndpoint, "--port", "0"] + gatewayArguments,
                prefix: "[gateway]", captureOutput: true, executable: try chimeraExecutable())
            guard let line = gateway.nextLine(timeoutSeconds: 60), line.hasPrefix("chimera-gateway url=") else {
                gateway.send(signal: SIGKILL)
                throw HeadlessBrowser.Failure(description: "the gateway printed no URL")
            }
            url = String(line.dropFirst("chimera-gateway url=".count))
        }

        deinit {
            gateway.send(signal: SIGKILL)
            gateway.wait(timeoutSeconds: 5)
        }
    }

    static func rows(_ browser: HeadlessBrowser, state: String) throws -> Int {
        try browser.evaluate("document.querySelectorAll('#workers tbody tr[data-state=\"\(state)\"]').length") as? Int
            ?? -1
    }

    static func points(_ browser: HeadlessBrowser, _ chart: String) throws -> Int {
        Int(try browser.evaluate("document.getElementById('\(chart)').dataset.points") as? String ?? "") ?? -1
    }

    @Test(
        "the page shows the workers, starts an SSP fit from its form, draws the loss as it falls, and the job ends succeeded; no console error"
    )
    func fitFromThePage() async throws {
        try await blocking {
            let stack = try Stack()
            let browser = try HeadlessBrowser(width: 1400, height: 1560)
            try browser.open(stack.url + "/")
            #expect(
                try browser.waitUntil("document.querySelectorAll('#workers tbody tr').length === 3", timeoutSeconds: 30)
            )
            #expect(try Self.rows(browser, state: "ready") == 3)
            // The form, as a user fills it: logistic regression, staleness bound 2 (SSP), 400 iterations.
            _ = try browser.evaluate(
                """
                (() => { const f = document.getElementById('fit-form');
                  f.elements.model.value = 'logistic'; f.elements.staleness.value = '2';
                  f.elements.iterations.value = '400'; f.elements.eta0.value = '0.05';
                  document.getElementById('fit-button').click(); return true; })()
                """)
            #expect(
                try browser.waitUntil(
                    "document.querySelector('#jobs tbody tr[data-state]') !== null", timeoutSeconds: 30),
                "no job row: \((try? browser.evaluate("document.getElementById('message').textContent")) ?? "")")
            // Points arrive while the fit runs (the straggler makes it last a dozen seconds).
            #expect(
                try browser.waitUntil(
                    "Number(document.getElementById('loss-iteration').dataset.points) > 0", timeoutSeconds: 60))
            // The README's picture: well into the fit, the straggler behind and the others waiting at the bound.
            let midway = try browser.waitUntil(
                "Number(document.getElementById('loss-iteration').dataset.points) >= 150", timeoutSeconds: 60)
            let whileRunning = try Self.points(browser, "loss-iteration")
            let running = try browser.evaluate("document.querySelector('#jobs tbody tr').dataset.state") as? String
            #expect(
                try browser.waitUntil(
                    "Number(document.getElementById('clocks').dataset.points) > 3", timeoutSeconds: 60))
            if midway, running == "running" {
                try browser.screenshot(to: Self.output.appendingPathComponent("dashboard-ssp-straggler.png"))
            }
            #expect(
                try browser.waitUntil(
                    "document.querySelector('#jobs tbody tr').dataset.state === 'succeeded'", timeoutSeconds: 120))
            #expect(
                try browser.waitUntil(
                    "Number(document.getElementById('loss-iteration').dataset.points) >= 400", timeoutSeconds: 10))
            #expect(try Self.points(browser, "loss-iteration") > whileRunning)
            #expect(try Self.points(browser, "barrier") == 3)
            #expect(try Self.points(browser, "staleness") >= 1)
            // The loss fell: the last point of the curve below the first.
            let fell = try browser.evaluate(
                "(() => { const l = state.losses; return l.length > 1 && l[l.length - 1][2] < l[0][2]; })()")
            #expect(fell as? Bool == true)
            try browser.screenshot(to: Self.output.appendingPathComponent("dashboard-fit-finished.png"))
            #expect(browser.consoleErrors.isEmpty, "\(browser.consoleErrors)")
        }
    }

    @Test(
        "a worker SIGKILLed during a fit on two parameter servers is marked dead on the page (the servers listed with their shards), and the page's cancel button ends the job"
    )
    func deadWorker() async throws {
        try await blocking {
            // The weights on two parameter servers (the master's children): the page lists them.
            let stack = try Stack(masterArguments: ["--servers", "2"], straggler: 0)
            try stack.cluster.waitFor("2 servers") { $0.servers.count == 2 }
            let browser = try HeadlessBrowser()
            try browser.open(stack.url + "/dashboard")
            #expect(
                try browser.waitUntil(
                    "document.querySelectorAll('#workers tbody tr[data-state=ready]').length === 3", timeoutSeconds: 30)
            )
            // A fit that outlasts the test, started as a script would.
            let started = try browser.evaluate(
                "fetch('/v1/chimera/jobs', {method: 'POST', body: JSON.stringify({iterations: 10000000})}).then(r => r.status)"
            )
            #expect(started as? Int == 202)
            #expect(
                try browser.waitUntil(
                    "document.querySelector('#jobs tbody tr[data-state=running]') !== null", timeoutSeconds: 30))
            #expect(
                try browser.waitUntil(
                    "[...document.querySelectorAll('#servers tbody tr')].filter(r => r.textContent.includes('shard')).length === 2",
                    timeoutSeconds: 30), "the servers table does not show the two shards")
            stack.cluster.workers["worker-2"]?.send(signal: SIGKILL)
            #expect(
                try browser.waitUntil(
                    "document.querySelector('#workers tbody tr[data-worker=\"worker-2\"]').dataset.state === 'dead'",
                    timeoutSeconds: 30))
            #expect(try Self.rows(browser, state: "ready") == 2)
            #expect(
                try browser.waitUntil(
                    "document.getElementById('log').textContent.includes('worker-2 died')", timeoutSeconds: 10))
            try browser.screenshot(to: Self.output.appendingPathComponent("dashboard-dead-worker.png"))
            _ = try browser.evaluate(
                "document.querySelector('#jobs tbody tr[data-state=running] button').click(), true")
            #expect(
                try browser.waitUntil(
                    "document.querySelector('#jobs tbody tr').dataset.state === 'cancelled'", timeoutSeconds: 30))
            #expect(browser.consoleErrors.isEmpty, "\(browser.consoleErrors)")
        }
    }

    @Test(
        "behind a path prefix with the token on: the page asks for the token once, then follows the cluster; the stream refuses requests without it"
    )
    func tokenAndBasePath() async throws {
        try await blocking {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
                "chimera-dash-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let token = "s3cret-\(UInt32.random(in: 1...UInt32.max))"
            let tokenFile = folder.appendingPathComponent("token")
            try token.write(to: tokenFile, atomically: true, encoding: .utf8)
            // A finished sweep for the list.
            let sweep = folder.appendingPathComponent("sweeps/ssp-demo")
            try FileManager.default.createDirectory(at: sweep, withIntermediateDirectories: true)
            try "<html><body><h1 id=sweep-title>SSP demo</h1></body></html>".write(
                to: sweep.appendingPathComponent("report.html"), atomically: true, encoding: .utf8)
            try "[{}, {}]".write(to: sweep.appendingPathComponent("sweep.json"), atomically: true, encoding: .utf8)
            let stack = try Stack(
                gatewayArguments: [
                    "--token-file", tokenFile.path, "--base-path", "chimera/",
                    "--sweeps-dir", folder.appendingPathComponent("sweeps").path,
                ], straggler: 0)
            #expect(stack.url.hasSuffix("/chimera"))
            let port = stack.url.split(separator: ":").last?.split(separator: "/").first ?? ""
            let browser = try HeadlessBrowser()
            browser.promptAnswer = token
            try browser.open(stack.url)
            #expect(
                try browser.waitUntil(
                    "document.querySelectorAll('#workers tbody tr[data-state=ready]').length === 3", timeoutSeconds: 30)
            )
            #expect(try browser.evaluate("sessionStorage.getItem('chimera-token')") as? String == token)
            let refused = try browser.evaluate("fetch('/chimera/v1/chimera/events').then(r => r.status)")
            #expect(refused as? Int == 401)
            let unprefixed = try browser.evaluate(
                "fetch('/v1/chimera/cluster', {headers: {Authorization: 'Bearer ' + sessionStorage.getItem('chimera-token')}}).then(r => r.status)"
            )
            #expect(unprefixed as? Int == 404)
            let documented = try browser.evaluate(
                "fetch('/chimera/openapi.json').then(r => r.json()).then(d => Object.keys(d.paths).includes('/v1/chimera/events') && d.servers[0].url === '/chimera')"
            )
            #expect(documented as? Bool == true)
            #expect(
                try browser.waitUntil(
                    "document.getElementById('sweeps').textContent.includes('ssp-demo')", timeoutSeconds: 10))
            _ = try browser.evaluate("document.querySelector('#sweeps button').click(), true")
            #expect(
                try browser.waitUntil(
                    "(document.getElementById('sweep-frame').srcdoc || '').includes('SSP demo')", timeoutSeconds: 10))
            // The refusals above are the only errors: the page itself met none.
            let others = browser.consoleErrors.filter {
                !$0.contains("status of 401")
                    && !($0.contains("status of 404") && $0.hasSuffix(":\(port)/v1/chimera/cluster"))
            }
            #expect(others.isEmpty, "\(others)")
        }
    }
}
