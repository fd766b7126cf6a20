public import ChimeraML
public import Foundation

/// A trained linear model as the master serves and saves it.
public struct FittedModel: Codable, Sendable {
    public var model: ModelKind
    @PackedFloats public var weights: [Float]
    public var featureNames: [String]
    public var classes: [Float]
    public var standardizer: Standardizer?
    public var configuration: TrainingConfiguration
    public var iterations: Int
    public var finalLoss: Double?
    /// Worker clocks when saved (checkpoints).
    public var clocks: [String: Int] = [:]
    /// Class names when the labels were names: class `classes[i]` (= i) is `classNames[i]`. Optional,
    /// so model files saved before names existed still load.
    public var classNames: [String]? = nil
    /// The job that wrote it, and whether that job had ended when it did: a checkpoint of a job that
    /// had not (the master crashed or was stopped mid-fit) is resumed by a master started with
    /// `--resume`. Optional: files written before these existed load as finished.
    public var jobID: UInt64? = nil
    public var finished: Bool? = nil
    /// The optimizer's step count and moments, so a resumed job goes on exactly (optional: older files).
    public var optimizerState: OptimizerState? = nil

    /// The model's loss, predictions and shape; throws when the file's weights do not fit its model
    /// (an MLP's layers changed, or a file edited by hand).
    public func objective() throws(InvalidSetting) -> Objective {
        var configuration = configuration
        configuration.model = model
        let objective = try Objective(configuration: configuration, features: featureNames.count, classes: classes)
        guard weights.count == objective.weightCount else {
            throw InvalidSetting(
                "the model file holds \(weights.count) weights, its model (\(objective.shapeSummary)) has \(objective.weightCount)"
            )
        }
        return objective
    }

    /// Writes JSON atomically (temporary file, then rename), so a crash never leaves half a file.
    /// `permissions`: the file's mode (model files hold what was learnt from the workers' data:
    /// owner-only by default).
    public func save(to url: URL, permissions: Int = 0o600) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: url, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: permissions], ofItemAtPath: url.path)
    }

    /// Whether this is the checkpoint of a job that did not end (the master went away mid-fit).
    public var isInterrupted: Bool { finished == false && jobID != nil && iterations < configuration.maxIterations }

    /// Reads a model file, checking that its weights fit its model.
    public static func load(from url: URL) throws -> FittedModel {
        let model = try JSONDecoder().decode(FittedModel.self, from: Data(contentsOf: url))
        do {
            _ = try model.objective()
        } catch {
            throw ModelFileError("\(url.path): \(error)")
        }
        return model
    }
}

/// Where each of `featureNames` is among `columns` (names matched trimmed and lower-cased). Throws
/// when a feature is missing or a column is unknown.
public func columnPositions(_ columns: [String], for featureNames: [String]) throws(PredictionError) -> [Int] {
    let names = columns.map(normalizedColumnName)
    let unknown = names.filter { !featureNames.contains($0) }
    guard unknown.isEmpty else { throw PredictionError.unknownColumns(unknown) }
    var position: [Int] = []
    for feature in featureNames {
        guard let index = names.firstIndex(of: feature) else { throw PredictionError.missingColumns([feature]) }
        position.append(index)
    }
    return position
}

/// The model's rows from a request's float32 rows of `width` columns: column `positions[t]` becomes
/// feature t, standardised when `standardizer` is set — in one pass over the request's memory,
/// with the arithmetic of `Standardizer.apply` (so the same values). A standardizer of another width,
/// which no fit makes, is not applied.
public func alignedRows(
    _ x: UnsafeBufferPointer<Float>, width: Int, positions: [Int], featureNames: [String], standardizer: Standardizer?
) -> Dataset {
    let count = positions.count
    let rows = width == 0 ? 0 : x.count / width
    let features = [Float](unsafeUninitializedCapacity: rows * count) { out, initialized in
        positions.withUnsafeBufferPointer { position in
            guard let standardizer, standardizer.mean.count == count, standardizer.scale.count == count else {
                for row in 0..<rows {
                    for t in 0..<count { out[row * count + t] = x[row * width + position[t]] }
                }
                return
            }
            let inOrder = width == count && position.indices.allSatisfy { position[$0] == $0 }
            standardizer.mean.withUnsafeBufferPointer { m in
                standardizer.scale.withUnsafeBufferPointer { s in
                    guard inOrder, let source = x.baseAddress, let target = out.baseAddress else {
                        for row in 0..<rows {
                            for t in 0..<count { out[row * count + t] = (x[row * width + position[t]] - m[t]) / s[t] }
                        }
                        return
                    }
                    // Columns already in the model's order (the usual request): a contiguous inner
                    // loop the compiler vectorises, divisions four at a time.
                    for row in 0..<rows {
                        let from = source + row * count
                        let to = target + row * count
                        for t in 0..<count { to[t] = (from[t] - m[t]) / s[t] }
                    }
                }
            }
        }
        initialized = rows * count
    }
    return Dataset(featureNames: featureNames, features: features, labels: [Float](repeating: 0, count: rows))
}

/// A model file that cannot be used, and why.
public struct ModelFileError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public enum PredictionError: Error, CustomStringConvertible, Sendable {
    case unknownColumns([String])
    case missingColumns([String])

    public var description: String {
        switch self {
        case .unknownColumns(let names): "unknown column(s): \(names.joined(separator: ", "))"
        case .missingColumns(let names): "missing column(s): \(names.joined(separator: ", "))"
        }
    }
}
