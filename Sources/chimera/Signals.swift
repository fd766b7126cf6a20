import Dispatch
import Foundation

/// Calls `handler` once on SIGINT or SIGTERM (instead of dying), so loops can stop cleanly.
enum TerminationSignals {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

    static func onTerminate(_ handler: @escaping @Sendable (Int32) -> Void) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { handler(number) }
            source.resume()
            sources.append(source)
        }
    }
}

func logLine(_ text: String) {
    FileHandle.standardError.write(Data("\(text)\n".utf8))
}

/// Whether `host` only accepts connections from this machine.
func isLoopback(_ host: String) -> Bool {
    ["127.0.0.1", "localhost", "::1"].contains(host)
}
