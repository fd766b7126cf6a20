import Foundation

/// The raw-libzmq C programs of `shared/baselines/zmq-floor`, compiled here so that our numbers and
/// theirs come from the same run on the same machine.
struct FloorPrograms {
    let binDirectory: URL

    /// Compiles `lat.c` and `thr.c` from `floorDirectory/c` with gcc -O3 into a scratch folder.
    init(floorDirectory: URL, scratch: URL) throws {
        let source = floorDirectory.appendingPathComponent("c")
        guard FileManager.default.fileExists(atPath: source.appendingPathComponent("lat.c").path) else {
            throw BenchmarkError("zmq-floor sources not found at \(source.path) (pass --floor-dir)")
        }
        binDirectory = scratch.appendingPathComponent("floor-bin")
        try FileManager.default.createDirectory(at: binDirectory, withIntermediateDirectories: true)
        for program in ["lat", "thr"] {
            try capture(
                "/usr/bin/env",
                [
                    "gcc", "-O3", "-march=native", "-o", binDirectory.appendingPathComponent(program).path,
                    source.appendingPathComponent("\(program).c").path, "-lzmq",
                ])
        }
    }

    /// Runs a floor program and returns its result lines.
    func run(_ program: String, _ arguments: [String], ipcDirectory: URL) throws -> [ResultLine] {
        let output = try capture(
            binDirectory.appendingPathComponent(program).path, arguments,
            environment: ["ZMQ_FLOOR_IPC_DIR": ipcDirectory.path])
        return output.split(separator: "\n").compactMap { ResultLine(String($0)) }
    }
}

/// Runs a command to completion and returns its stdout; throws on a non-zero exit.
@discardableResult
func capture(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw BenchmarkError(
            "\(executable) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
    }
    return String(decoding: data, as: UTF8.self)
}

public struct BenchmarkError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// zmq-floor's `psround`: the parameter-server round in bare C over libzmq, compiled here once per
/// benchmark; the reference the master's round is set against at the same N.
struct PSRound {
    let path: String

    /// Compiles `c/psround.c` from `floorDirectory` into `scratch/floor-bin`.
    init(floorDirectory: URL, scratch: URL, log: (String) -> Void) throws {
        log("compiling the raw-libzmq parameter-server round (psround)")
        let bin = scratch.appendingPathComponent("floor-bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        path = bin.appendingPathComponent("psround").path
        try capture(
            "/usr/bin/env",
            [
                "gcc", "-O3", "-march=native", "-o", path,
                floorDirectory.appendingPathComponent("c/psround.c").path, "-lzmq",
            ])
    }

    /// The median round, in ms, of N workers moving `floats` values over TCP for 1.5 s.
    func medianRound(workers: Int, floats: Int) throws -> Double? {
        let output = try capture(path, ["tcp", "\(workers)", "\(floats)", "1.5"])
        return output.split(separator: "\n").compactMap { ResultLine(String($0)) }.first?.number("median_ms")
    }
}
