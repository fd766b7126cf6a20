public import Foundation

/// The built `chimera` executable, beside the test bundle in the build folder.
public func chimeraExecutable() throws -> URL {
    let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var directory = testBinary.deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent("chimera")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "chimera executable near \(testBinary.path)"])
}

/// The result of running a command to completion.
public struct CommandResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs `chimera` with `arguments` and waits for it (the caller bounds the run with its own options).
public func runChimera(_ arguments: [String]) throws -> CommandResult {
    let process = Process()
    process.executableURL = try chimeraExecutable()
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Drain stderr concurrently so a chatty child cannot block on a full pipe.
    let errData = LockedData()
    let errThread = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
    errThread.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !errData.isSet { usleep(1_000) }
    return CommandResult(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData.value, as: UTF8.self))
}

private final class LockedData: @unchecked Sendable {
    // Guarded by `lock`; written once by the draining thread, read after it has finished.
    private let lock = NSLock()
    private var data: Data?
    func set(_ value: Data) { lock.withLock { data = value } }
    var isSet: Bool { lock.withLock { data != nil } }
    var value: Data { lock.withLock { data ?? Data() } }
}

/// Whether a process is gone (exited and reaped, or a zombie waiting for its reaper).
public func processIsGone(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    // Field 3, after the parenthesised command name, is the state.
    guard let close = stat.lastIndex(of: ")") else { return true }
    let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
    return state == "Z" || state == "X"
}

/// Waits (bounded, up to ~10 s) until every process in `pids` is gone; SIGKILLs stragglers so a failing
/// test leaves nothing behind. Returns whether they all went by themselves.
public func waitUntilGone(_ pids: [Int32], seconds: Double = 10) -> Bool {
    var gone = false
    for _ in 0..<Int(seconds * 100) where !gone {
        gone = pids.allSatisfy(processIsGone)
        if !gone { usleep(10_000) }
    }
    for pid in pids where !processIsGone(pid) { kill(pid, SIGKILL) }
    return gone
}
