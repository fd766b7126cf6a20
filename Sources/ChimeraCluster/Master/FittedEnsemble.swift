public import ChimeraML
public import Foundation

/// A bagging ensemble as the aggregation master serves and saves it.
public struct FittedEnsemble: Sendable {
    public var ensemble: TreeEnsemble
    /// Class names when the labels were names: class `classes[i]` (= i) is `classNames[i]`.
    public var classNames: [String]
    public var configuration: AggregationConfiguration
    /// Trees per worker name, for reports.
    public var membersByWorker: [String: Int]

    public init(
        ensemble: TreeEnsemble, classNames: [String] = [], configuration: AggregationConfiguration,
        membersByWorker: [String: Int]
    ) {
        self.ensemble = ensemble
        self.classNames = classNames
        self.configuration = configuration
        self.membersByWorker = membersByWorker
    }

    /// The saved form: trees in their binary encoding, base64 in JSON.
    struct Saved: Codable {
        var task: TreeTask
        var featureNames: [String]
        var classes: [Float]
        /// Absent in files saved before class names existed.
        var classNames: [String]?
        var configuration: AggregationConfiguration
        var membersByWorker: [String: Int]
        var trees: [Data]
    }

    /// Writes JSON atomically, so a crash never leaves half a file.
    public func save(to url: URL, permissions: Int = 0o600) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let saved = Saved(
            task: ensemble.task, featureNames: ensemble.featureNames, classes: ensemble.classes,
            classNames: classNames.isEmpty ? nil : classNames, configuration: configuration,
            membersByWorker: membersByWorker, trees: ensemble.trees.map { Data(TreeCodec.encode($0)) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(saved).write(to: url, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: permissions], ofItemAtPath: url.path)
    }

    public static func load(from url: URL) throws -> FittedEnsemble {
        let saved = try JSONDecoder().decode(Saved.self, from: Data(contentsOf: url))
        let trees = try saved.trees.map { try TreeCodec.decode($0) }
        return FittedEnsemble(
            ensemble: TreeEnsemble(
                task: saved.task, featureNames: saved.featureNames, classes: saved.classes, trees: trees),
            classNames: saved.classNames ?? [], configuration: saved.configuration,
            membersByWorker: saved.membersByWorker)
    }
}
