/// The machine-readable line a master prints first on stdout:
/// `chimera-master workers=tcp://… broadcast=tcp://… control=tcp://…`. Supervisors read the ports here.
public struct MasterAnnouncement: Sendable, Equatable {
    public let workers: String
    public let broadcast: String
    public let control: String

    public init(workers: String, broadcast: String, control: String) {
        self.workers = workers
        self.broadcast = broadcast
        self.control = control
    }

    public var line: String { "chimera-master workers=\(workers) broadcast=\(broadcast) control=\(control)" }

    /// Parses the line; nil when it is something else.
    public init?(line: String) {
        guard line.hasPrefix("chimera-master ") else { return nil }
        var fields: [String: String] = [:]
        for part in line.split(separator: " ").dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        guard let workers = fields["workers"], let broadcast = fields["broadcast"], let control = fields["control"]
        else {
            return nil
        }
        self.init(workers: workers, broadcast: broadcast, control: control)
    }
}
