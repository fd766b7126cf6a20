import Dispatch
import Foundation

/// A line for the person at the terminal (not a log event: progress and what Ctrl-C did).
func logLine(_ text: String) {
    FileHandle.standardError.write(Data("\(text)\n".utf8))
}

/// Whether `host` only accepts connections from this machine.
func isLoopback(_ host: String) -> Bool {
    ["127.0.0.1", "localhost", "::1"].contains(host)
}
