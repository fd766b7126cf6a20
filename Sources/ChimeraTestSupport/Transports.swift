import Foundation
public import ZeroMQ

/// The transports every socket pattern is tested over.
public enum Transport: String, Sendable, CaseIterable, CustomStringConvertible {
    case inproc, ipc, tcp

    public var description: String { rawValue }
}

/// Endpoints for tests: unique inproc names, ipc files in a private folder (libzmq 4.3 never deletes
/// them, so the folder is removed at the end), and tcp on 127.0.0.1 with an OS-chosen port.
public final class EndpointFactory {
    private let directory: URL
    private var counter = 0

    public init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent(
                "chimera-test-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// An endpoint to bind; for tcp the port is `*`, so read the bound endpoint back from `bind`.
    public func bindable(_ transport: Transport, _ name: String = "s") -> String {
        counter += 1
        switch transport {
        case .inproc: return "inproc://\(name)-\(counter)-\(UUID().uuidString.prefix(8))"
        case .ipc: return "ipc://\(directory.path)/\(name)-\(counter).sock"
        case .tcp: return "tcp://127.0.0.1:*"
        }
    }
}

/// Runs a blocking test body on its own thread, so libzmq calls never hold a cooperative-pool thread.
public func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await DedicatedThread.run(name: "test-body", body)
}

/// A socket with the settings tests want: no linger, and bounded waits so a bug fails instead of hanging.
public func testSocket(_ context: Context, _ type: SocketType, timeoutMilliseconds: Int32 = 10_000) throws -> Socket {
    let socket = try context.socket(type)
    try socket.setLinger(milliseconds: 0)
    try socket.setReceiveTimeout(milliseconds: timeoutMilliseconds)
    try socket.setSendTimeout(milliseconds: timeoutMilliseconds)
    return socket
}
