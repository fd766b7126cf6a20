internal import CProcessShims
import Dispatch
public import Foundation
import Synchronization

/// A child process of this executable (`/proc/self/exe` with other arguments), supervised by its parent.
///
/// Children are started with Foundation's `Process` (never `fork()` in a multi-threaded Swift process).
/// The child calls `ChildProcess.dieWithParent()` at start so that it exits even if the parent is killed
/// with SIGKILL and cannot clean up. Output lines are either forwarded to our stderr with a prefix
/// or collected for `nextLine`.
public final class ChildProcess: Sendable {
    public let name: String
    private let process: Process
    private let lines: Lines

    /// Starts this executable with `arguments`.
    /// - Parameters:
    ///   - prefix: forward the child's stderr to ours, each line prefixed (`nil`: pass through).
    ///   - captureOutput: keep stdout lines for `nextLine` instead of forwarding them.
    public init(
        name: String, arguments: [String], prefix: String? = nil, captureOutput: Bool = false, executable: URL? = nil,
        logFile: URL? = nil, environment: [String: String] = [:], workingDirectory: URL? = nil
    ) throws {
        self.name = name
        let process = Process()
        process.executableURL = executable ?? ChildProcess.selfExecutable
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if let workingDirectory { process.currentDirectoryURL = workingDirectory }
        let lines = Lines()
        self.lines = lines
        if captureOutput {
            let pipe = Pipe()
            process.standardOutput = pipe
            ChildProcess.pump(pipe.fileHandleForReading, onEnd: { lines.close() }) { lines.append($0) }
        } else if let prefix {
            let pipe = Pipe()
            process.standardOutput = pipe
            ChildProcess.pump(pipe.fileHandleForReading) { ChildProcess.writeStderr("\(prefix) \($0)\n") }
        }
        if let logFile {
            // Append the child's stderr to a file (tuning runs keep each run's logs apart).
            _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
            let handle = try FileHandle(forWritingTo: logFile)
            handle.seekToEndOfFile()
            process.standardError = handle
        } else if let prefix {
            let pipe = Pipe()
            process.standardError = pipe
            ChildProcess.pump(pipe.fileHandleForReading) { ChildProcess.writeStderr("\(prefix) \($0)\n") }
        }
        try process.run()
        self.process = process
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    /// The executable of this process, for starting copies of itself.
    public static var selfExecutable: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    }

    /// Unblocks all signals of the calling (main) thread: a spawned process inherits the blocked mask of
    /// the thread that spawned it, and SIGTERM/SIGINT must reach us.
    public static func unblockSignals() {
        _ = chimera_unblock_all_signals()
    }

    /// In a child: exit with SIGTERM when the parent dies, even if the parent is SIGKILLed.
    public static func dieWithParent(originalParent: Int32) {
        _ = chimera_die_with_parent(SIGTERM)
        // The parent may have died before prctl took effect.
        if getppid() != originalParent { exit(1) }
    }

    public var processIdentifier: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// The next stdout line (with `captureOutput`), or `nil` when the child closed stdout or the
    /// timeout passed.
    public func nextLine(timeoutSeconds: Double) -> String? {
        lines.next(timeoutSeconds: timeoutSeconds)
    }

    /// Sends SIGTERM.
    public func terminate() { if process.isRunning { process.terminate() } }

    /// SIGTERM to all (last started first), then waits for each: a cluster's orderly stop.
    public static func stopAll(_ children: [ChildProcess], timeoutSeconds: Double = 10) {
        for child in children.reversed() { child.terminate() }
        for child in children.reversed() { child.wait(timeoutSeconds: timeoutSeconds) }
    }

    /// Sends `signal` (e.g. SIGKILL, SIGSTOP, SIGCONT). Not gated on `isRunning`: Foundation reports a
    /// stopped child as not running, and SIGCONT must still reach it.
    public func send(signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits for the child to exit; SIGKILLs it after `timeoutSeconds`. Returns the exit status
    /// (128 + signal for a signalled child).
    @discardableResult
    public func wait(timeoutSeconds: Double) -> Int32 {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while process.isRunning && Date() < deadline { usleep(2_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal
            ? 128 + process.terminationStatus : process.terminationStatus
    }

    private static func pump(
        _ handle: FileHandle, onEnd: (@Sendable () -> Void)? = nil, _ line: @escaping @Sendable (String) -> Void
    ) {
        // A thread of its own: a blocking read on Dispatch's global queue holds one of its few threads,
        // and with several children Dispatch adds threads only every second or two (output lagged).
        let thread = Thread {
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    line(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                    pending.removeSubrange(pending.startIndex...newline)
                }
            }
            if !pending.isEmpty { line(String(decoding: pending, as: UTF8.self)) }
            onEnd?()
        }
        thread.name = "chimera-child-output"
        thread.start()
    }

    static func writeStderr(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}

/// Lines collected from a child's stdout, waited for with a timeout.
private final class Lines: Sendable {
    private let state = Mutex<(lines: [String], closed: Bool)>(([], false))
    private let available = DispatchSemaphore(value: 0)

    func append(_ line: String) {
        state.withLock { $0.lines.append(line) }
        available.signal()
    }

    func close() {
        state.withLock { $0.closed = true }
        available.signal()
    }

    func next(timeoutSeconds: Double) -> String? {
        let deadline = DispatchTime.now() + timeoutSeconds
        while true {
            let (line, closed): (String?, Bool) = state.withLock { state in
                state.lines.isEmpty ? (nil, state.closed) : (state.lines.removeFirst(), false)
            }
            if let line { return line }
            if closed { return nil }
            if available.wait(timeout: deadline) == .timedOut { return nil }
        }
    }
}
