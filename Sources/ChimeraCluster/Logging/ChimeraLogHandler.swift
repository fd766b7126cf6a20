import Foundation
public import Logging

/// How chimera processes write their logs to stderr: `text` for people (`master: job 3 succeeded
/// (job=3)`), `json` for log shippers (one object per line with level, label, message and metadata).
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

/// swift-log's handler for every chimera process: one line per event on stderr.
public struct ChimeraLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let format: LogFormat

    public init(label: String, level: Logger.Level, format: LogFormat) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    /// Installs the handler for the whole process (swift-log allows it once: call it first thing in a
    /// command).
    public static func bootstrap(level: Logger.Level = .info, format: LogFormat = .text) {
        LoggingSystem.bootstrap { label in ChimeraLogHandler(label: label, level: level, format: format) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let line: String
        switch format {
        case .text: line = Self.text(label: label, level: event.level, message: "\(event.message)", metadata: merged)
        case .json: line = Self.json(label: label, level: event.level, message: "\(event.message)", metadata: merged)
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// `who: message (key=value, …)`: who is the last part of the label (`chimera.master` → `master`),
    /// or a worker's own name in a worker's lines.
    static func text(label: String, level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var rest = metadata
        var who = String(label.split(separator: ".").last ?? Substring(label))
        if who == "worker", let name = rest.removeValue(forKey: "worker") { who = "\(name)" }
        var line = "\(who): "
        if level >= .warning { line += "\(level): " }
        line += message
        if !rest.isEmpty {
            line += " (" + rest.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ") + ")"
        }
        return line
    }

    static func json(label: String, level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var object: [String: Any] = [
            "time": ISO8601DateFormatter.string(
                from: Date(), timeZone: TimeZone(identifier: "UTC")!,
                formatOptions: [.withInternetDateTime, .withFractionalSeconds]),
            "level": level.rawValue, "label": label, "message": message,
        ]
        for (key, value) in metadata where object[key] == nil { object[key] = plain(value) }
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else {
            return "{\"level\":\"\(level.rawValue)\",\"message\":\"(unencodable log line)\"}"
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func plain(_ value: Logger.MetadataValue) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let value): "\(value)"
        case .array(let values): values.map(plain)
        case .dictionary(let map): map.mapValues(plain)
        }
    }
}
