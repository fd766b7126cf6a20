public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: it
/// reads NUL-terminated JSON commands on fd 3 and answers on fd 4), for tests of the dashboard in a
/// real browser: no driver binary, no WebSocket, no port. Console errors and uncaught exceptions of
/// the page are collected; the browser is killed when this object goes.
public final class HeadlessBrowser: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Chromium's executable on this machine, or nil (then a test says why it skipped).
    public static var executable: String? {
        let names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for directory in path {
            for name in names {
                let candidate = "\(directory)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        return nil
    }

    private let pid: pid_t
    private let toBrowser: Int32
    private let fromBrowser: Int32
    private let profile: URL
    private let lock = NSCondition()
    private var nextID = 1
    private var answers: [Int: [String: Any]] = [:]
    private var closed = false
    private var session: String?
    /// Console errors, uncaught exceptions and failed loads of the page, in order.
    public private(set) var consoleErrors: [String] = []
    /// Answer to give the page's `prompt()` dialogs (the dashboard asks for its token that way).
    public var promptAnswer = ""

    public init(width: Int = 1400, height: Int = 1100) throws {
        guard let executable = Self.executable else { throw Failure(description: "no chromium on PATH") }
        profile = FileManager.default.temporaryDirectory.appendingPathComponent("chimera-browser-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        var commands: [Int32] = [0, 0]
        var replies: [Int32] = [0, 0]
        guard pipe(&commands) == 0, pipe(&replies) == 0 else { throw Failure(description: "pipe: \(errno)") }
        // Only the dup2'ed copies (3 and 4) reach the browser.
        for fd in commands + replies { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, commands[0], 3)
        posix_spawn_file_actions_adddup2(&actions, replies[1], 4)
        let log = profile.appendingPathComponent("chromium.log").path
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let arguments = [
            executable, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--user-data-dir=\(profile.path)", "--window-size=\(width),\(height)", "about:blank",
        ]
        var argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child: pid_t = 0
        let spawned = posix_spawn(&child, executable, &actions, nil, &argv, environ)
        close(commands[0])
        close(replies[1])
        guard spawned == 0 else {
            close(commands[1])
            close(replies[0])
            throw Failure(description: "could not start \(executable): \(spawned)")
        }
        pid = child
        toBrowser = commands[1]
        fromBrowser = replies[0]
        let reader = Thread { [weak self] in self?.readLoop() }
        reader.start()
    }

    deinit {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        close(toBrowser)
        close(fromBrowser)
        try? FileManager.default.removeItem(at: profile)
    }

    /// Opens `url` in a new page and waits for it to load.
    public func open(_ url: String, timeoutSeconds: Double = 30) throws {
        let target = try call("Target.createTarget", ["url": "about:blank"])
        guard let id = target["targetId"] as? String else { throw Failure(description: "no target: \(target)") }
        let attached = try call("Target.attachToTarget", ["targetId": id, "flatten": true])
        guard let session = attached["sessionId"] as? String else { throw Failure(description: "not attached") }
        lock.lock()
        self.session = session
        lock.unlock()
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] { _ = try call(domain, [:], session: session) }
        _ = try call("Page.navigate", ["url": url], session: session)
        guard try waitUntil("document.readyState === 'complete'", timeoutSeconds: timeoutSeconds) else {
            throw Failure(description: "\(url) did not load in \(timeoutSeconds) s")
        }
    }

    /// The value of a JavaScript expression in the page (promises awaited).
    public func evaluate(_ expression: String) throws -> Any? {
        let result = try call(
            "Runtime.evaluate", ["expression": expression, "returnByValue": true, "awaitPromise": true],
            session: session)
        if let exception = result["exceptionDetails"] as? [String: Any] {
            throw Failure(description: "\(expression): \(exception["text"] ?? exception)")
        }
        return (result["result"] as? [String: Any])?["value"]
    }

    /// Polls `expression` until it is true; false after the timeout.
    public func waitUntil(_ expression: String, timeoutSeconds: Double) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            if (try? evaluate(expression)) as? Bool == true { return true }
            usleep(100_000)
        }
        return false
    }

    /// A PNG of the page as it shows now.
    public func screenshot(to file: URL) throws {
        let result = try call("Page.captureScreenshot", ["format": "png"], session: session)
        guard let text = result["data"] as? String, let data = Data(base64Encoded: text) else {
            throw Failure(description: "no screenshot data")
        }
        try FileManager.default.createDirectory(
            at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: file)
    }

    // MARK: The protocol

    private func call(
        _ method: String, _ parameters: [String: Any], session: String? = nil, timeoutSeconds: Double = 30
    )
        throws -> [String: Any]
    {
        lock.lock()
        let id = nextID
        nextID += 1
        lock.unlock()
        var message: [String: Any] = ["id": id, "method": method, "params": parameters]
        if let session { message["sessionId"] = session }
        var data = try JSONSerialization.data(withJSONObject: message)
        data.append(0)
        try data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(toBrowser, bytes.baseAddress! + offset, bytes.count - offset)
                guard written > 0 else { throw Failure(description: "the browser closed its pipe") }
                offset += written
            }
        }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        lock.lock()
        defer { lock.unlock() }
        while answers[id] == nil {
            if closed { throw Failure(description: "the browser exited during \(method)") }
            guard lock.wait(until: deadline) else { throw Failure(description: "\(method) got no answer") }
        }
        let answer = answers.removeValue(forKey: id)!
        if let error = answer["error"] { throw Failure(description: "\(method): \(error)") }
        return answer["result"] as? [String: Any] ?? [:]
    }

    private func readLoop() {
        var buffer = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(fromBrowser, &chunk, chunk.count)
            if count <= 0 { break }
            buffer.append(contentsOf: chunk[0..<count])
            while let end = buffer.firstIndex(of: 0) {
                let message = buffer[buffer.startIndex..<end]
                buffer = Data(buffer[(end + 1)...])
                guard let object = try? JSONSerialization.jsonObject(with: message) as? [String: Any] else { continue }
                handle(object)
            }
        }
        lock.lock()
        closed = true
        lock.broadcast()
        lock.unlock()
    }

    private func handle(_ message: [String: Any]) {
        lock.lock()
        defer { lock.unlock() }
        if let id = message["id"] as? Int {
            answers[id] = message
            lock.broadcast()
            return
        }
        let parameters = message["params"] as? [String: Any] ?? [:]
        switch message["method"] as? String {
        case "Runtime.consoleAPICalled" where parameters["type"] as? String == "error":
            let arguments = (parameters["args"] as? [[String: Any]] ?? []).map {
                "\($0["value"] ?? $0["description"] ?? "")"
            }
            consoleErrors.append("console.error: " + arguments.joined(separator: " "))
        case "Runtime.exceptionThrown":
            let details = parameters["exceptionDetails"] as? [String: Any] ?? [:]
            let exception = (details["exception"] as? [String: Any])?["description"] ?? details["text"] ?? ""
            consoleErrors.append("exception: \(exception)")
        case "Log.entryAdded":
            let entry = parameters["entry"] as? [String: Any] ?? [:]
            if entry["level"] as? String == "error" {
                consoleErrors.append("log: \(entry["text"] ?? "") \(entry["url"] ?? "")")
            }
        case "Page.javascriptDialogOpening":
            // Answered from another thread: this one must go on reading the answer.
            let session = message["sessionId"] as? String
            let answer = promptAnswer
            Thread.detachNewThread { [weak self] in
                _ = try? self?.call(
                    "Page.handleJavaScriptDialog", ["accept": true, "promptText": answer], session: session)
            }
        default:
            break
        }
    }
}
