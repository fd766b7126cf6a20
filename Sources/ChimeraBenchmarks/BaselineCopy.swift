import ChimeraCluster
import Foundation

/// The Python Chimera baseline, copied to a writable scratch folder (shared/ is read-only) and run from
/// there with its own venv.
enum BaselineCopy {
    /// Copies the baseline's files, keeping a previous venv, data and results.
    static func prepare(of source: URL, at copy: URL) throws {
        let manager = FileManager.default
        try manager.createDirectory(at: copy, withIntermediateDirectories: true)
        for name in try manager.contentsOfDirectory(atPath: source.path)
        where !name.hasPrefix(".") || name == ".gitignore" {
            let target = copy.appendingPathComponent(name)
            try? manager.removeItem(at: target)
            try manager.copyItem(at: source.appendingPathComponent(name), to: target)
            try manager.setAttributes(
                [.posixPermissions: name.hasSuffix(".sh") ? 0o755 : 0o644], ofItemAtPath: target.path)
        }
    }

    /// The baseline's results file `runs/<file>` in the scratch copy: produced now by running the driver
    /// with `arguments`, or the existing one when `reuse` is set and it exists.
    static func results(
        source: URL, scratch: URL, file: String, reuse: Bool, arguments: [String], announce: String,
        log: (String) -> Void
    ) throws -> (copy: URL, results: URL) {
        let copy = scratch.appendingPathComponent("original-chimera")
        let results = copy.appendingPathComponent("runs/\(file)")
        if !reuse || !FileManager.default.fileExists(atPath: results.path) {
            try prepare(of: source, at: copy)
            log(announce)
            try run(copy, arguments)
        }
        return (copy, results)
    }

    /// Runs the baseline's driver (venv, data, then bench.py with `arguments`).
    static func run(_ copy: URL, _ arguments: [String]) throws {
        try capture(
            "/usr/bin/env", ["bash", copy.appendingPathComponent("run_baseline.sh").path] + arguments,
            environment: ["SKIP_PROBES": "1"])
    }

    /// The venv's interpreter, creating the venv and data first when missing.
    static func python(_ copy: URL) throws -> URL {
        let python = copy.appendingPathComponent(".venv/bin/python")
        let data = copy.appendingPathComponent("data/manifest.json")
        if !FileManager.default.fileExists(atPath: python.path) || !FileManager.default.fileExists(atPath: data.path) {
            try run(
                copy, ["--reps", "1", "--workers", "1", "--only", "bag_tree_breast", "--no-sklearn", "--tag", "_setup"])
        }
        return python
    }
}

/// A Python Chimera cluster (workers and one master as plain processes, as the baseline's bench.py
/// starts them), for measuring its HTTP endpoints with our own load generator.
final class PythonChimeraCluster {
    let url: String
    private var processes: [ChildProcess] = []

    /// `kind`: "aggregation" (tree-classifier workers) or "sgd-classifier"; `shards` hold
    /// `chimera_train_data/`.
    init(copy: URL, kind: String, shards: [URL], workerArguments: [String: Any], masterArguments: [String: Any]) throws
    {
        let python = try BaselineCopy.python(copy)
        let node = copy.appendingPathComponent("chimera_node.py").path
        let ports = try (0...shards.count).map { _ in try freePort() }
        let run = FileManager.default.temporaryDirectory.appendingPathComponent(
            "chimera-py-\(UUID().uuidString.prefix(8))")
        let names = (1...shards.count).map { "w\($0)" }
        func json(_ value: Any) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: value), as: UTF8.self)
        }
        let environment = [
            "CHIMERA_WORKERS_NODES_NAMES": try json(names),
            "CHIMERA_WORKERS_CPU_SHARES": try json(names.map { _ in 2 }),
            "CHIMERA_WORKERS_MAPPED_PORTS": try json(Array(ports.dropFirst())), "CHIMERA_WORKERS_HOST": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
        ]
        url = "http://127.0.0.1:\(ports[0])"
        let workerKind = kind == "aggregation" ? "tree-classifier" : kind
        for (index, shard) in shards.enumerated() {
            let directory = run.appendingPathComponent(names[index])
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(
                at: directory.appendingPathComponent("chimera_train_data"),
                withDestinationURL: shard.appendingPathComponent("chimera_train_data"))
            processes.append(
                try ChildProcess(
                    name: names[index], arguments: [node, "worker", workerKind, "--kwargs", try json(workerArguments)],
                    captureOutput: true, executable: python, logFile: directory.appendingPathComponent("node.log"),
                    environment: environment.merging(["CHIMERA_WORKERS_PORT": "\(ports[index + 1])"]) { $1 },
                    workingDirectory: directory))
        }
        let masterDirectory = run.appendingPathComponent("master")
        try FileManager.default.createDirectory(at: masterDirectory, withIntermediateDirectories: true)
        processes.append(
            try ChildProcess(
                name: "py-master",
                arguments: [node, "master", kind, "--port", "\(ports[0])", "--kwargs", try json(masterArguments)],
                captureOutput: true, executable: python, logFile: masterDirectory.appendingPathComponent("node.log"),
                environment: environment, workingDirectory: masterDirectory))
        for port in ports {
            let deadline = Date().addingTimeInterval(120)
            while (try? HTTPLoad.request("http://127.0.0.1:\(port)/openapi.json", method: "GET").status) != 200 {
                guard Date() < deadline else {
                    throw BenchmarkError("a Python Chimera node on port \(port) did not start")
                }
                usleep(100_000)
            }
        }
    }

    deinit { ChildProcess.stopAll(processes) }

    /// Its processes, for freezing them while another server is measured.
    var processIDs: [Int32] { processes.map(\.processIdentifier) }
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard bound else { throw BenchmarkError("no free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}
