public import ChimeraCluster
public import Foundation

/// The multi-host test bed of `deploy/testbed/testbed.sh` for tests: network namespaces with their own
/// IPs on a private subnet, joined by a bridge; processes started inside them; links cut and restored.
/// Each bed gets its own name prefix and subnet, and is taken down when released.
public final class Testbed {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Whether this machine can make one (root or password-less sudo, `ip`); else why not.
    public static var unavailable: String? {
        guard getuid() == 0 || sudo else { return "needs root (or password-less sudo) for network namespaces" }
        guard
            FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
                || FileManager.default.isExecutableFile(atPath: "/sbin/ip")
        else { return "no ip command (iproute2)" }
        return nil
    }

    public static let script = repositoryRoot.appendingPathComponent("deploy/testbed/testbed.sh")

    /// Not root, but `sudo -n` works: the bed and its processes run through it.
    static let sudo: Bool = {
        guard getuid() != 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/sudo") else { return false }
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/sudo")
        probe.arguments = ["-n", "true"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return false }
        probe.waitUntilExit()
        return probe.terminationStatus == 0
    }()

    /// The command line as this process may run it (through `sudo -n` when not root).
    static func privileged(_ executable: String, _ arguments: [String]) -> (URL, [String]) {
        getuid() == 0
            ? (URL(fileURLWithPath: executable), arguments)
            : (URL(fileURLWithPath: "/usr/bin/sudo"), ["-n", executable] + arguments)
    }

    public let prefix: String
    public let subnet: String
    /// Host name → IP.
    public private(set) var hosts: [String: String] = [:]
    /// The machine's own address on the bed (the bridge's).
    public var machine: String { "\(subnet).1" }
    private var processes: [ChildProcess] = []

    public init(hosts names: [String]) throws {
        prefix = "t" + String(UInt16.random(in: 0x100...0xfff), radix: 16)
        subnet = "10.\(UInt8.random(in: 64...127)).\(UInt8.random(in: 1...250))"
        let listing = try run(["up"] + names)
        for line in listing.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2 { hosts[String(parts[0])] = String(parts[1]) }
        }
        guard hosts.count == names.count else {
            _ = try? run(["down"])
            throw Failure(description: "testbed up printed \(listing)")
        }
    }

    deinit {
        for process in processes { process.send(signal: SIGKILL) }
        for process in processes { process.wait(timeoutSeconds: 5) }
        _ = try? run(["down"])
    }

    public func ip(_ host: String) -> String { hosts[host] ?? "0.0.0.0" }

    /// Starts `chimera arguments` on `host`; it is killed when the bed goes.
    @discardableResult
    public func start(_ name: String, on host: String, _ arguments: [String]) throws -> ChildProcess {
        let (executable, line) = Self.privileged(
            Self.ip, ["netns", "exec", "\(prefix)-\(host)", try chimeraExecutable().path] + arguments)
        let process = try ChildProcess(
            name: name, arguments: line, prefix: "[\(name)@\(host)]", captureOutput: true, executable: executable)
        processes.append(process)
        return process
    }

    /// Cuts (`up: false`) or restores a host's link.
    public func link(_ host: String, up: Bool) throws { _ = try run(["link", host, up ? "up" : "down"]) }

    /// Limits a host's link each way (`rate` as tc takes it, e.g. `1gbit`; "off" removes the limit).
    public func shape(_ host: String, rate: String) throws { _ = try run(["shape", host, rate]) }

    private static var ip: String {
        FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") ? "/usr/sbin/ip" : "/sbin/ip"
    }

    @discardableResult
    private func run(_ arguments: [String]) throws -> String {
        let process = Process()
        let (executable, line) = Self.privileged(
            "/usr/bin/env",
            ["TESTBED_PREFIX=\(prefix)", "TESTBED_SUBNET=\(subnet)", "bash", Self.script.path] + arguments)
        process.executableURL = executable
        process.arguments = line
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(
                description:
                    "testbed.sh \(arguments.joined(separator: " ")): \(String(decoding: errors, as: UTF8.self))")
        }
        return String(decoding: output, as: UTF8.self)
    }
}
