public import ChimeraML
public import Foundation

/// The Python Chimera's data layout: `<dir>/<worker>/X_train.csv` and `y_train.csv` (also accepted:
/// `<worker>/chimera_train_data/…`, the folder its Docker images use), with header rows.
public enum ShardLayout {
    /// Loads one worker's shard from its folder.
    public static func loadShard(_ folder: URL) throws -> Dataset {
        var base = folder
        let nested = folder.appendingPathComponent("chimera_train_data")
        if !FileManager.default.fileExists(atPath: folder.appendingPathComponent("X_train.csv").path),
            FileManager.default.fileExists(atPath: nested.appendingPathComponent("X_train.csv").path)
        {
            base = nested
        }
        return try loadPair(
            features: base.appendingPathComponent("X_train.csv").path, labels: base.appendingPathComponent("y_train.csv").path)
    }

    /// Loads a features file and its labels file (one column) into a dataset.
    public static func loadPair(features featuresPath: String, labels labelsPath: String) throws -> Dataset {
        let x = try CSVTable.read(featuresPath)
        let y = try CSVTable.read(labelsPath)
        guard y.columns.count == 1 else {
            throw DataError(file: labelsPath, "must have exactly one column, has \(y.columns.count) (\(y.columns.joined(separator: ", ")))")
        }
        guard x.rows > 0 else { throw DataError(file: featuresPath, "has no data rows (empty shard)") }
        guard x.rows == y.rows else {
            throw DataError(file: labelsPath, "has \(y.rows) rows but \(featuresPath) has \(x.rows)")
        }
        return Dataset(featureNames: x.columns, features: x.values, labels: y.values)
    }

    /// Loads a features file alone (for prediction).
    public static func loadFeatures(_ path: String) throws -> (columns: [String], rows: [[Float]]) {
        let x = try CSVTable.read(path)
        return (x.columns, (0..<x.rows).map { Array(x.values[($0 * x.columns.count)..<(($0 + 1) * x.columns.count)]) })
    }

    /// Loads a labels file alone.
    public static func loadLabels(_ path: String) throws -> [Float] {
        let y = try CSVTable.read(path)
        guard y.columns.count == 1 else { throw DataError(file: path, "must have exactly one column") }
        return y.values
    }

    /// Checks that every shard has the same columns in the same order; names the first that differs.
    public static func checkConsistent(_ shards: [(name: String, columns: [String])]) throws {
        guard let first = shards.first else { return }
        for shard in shards.dropFirst() where shard.columns != first.columns {
            let missing = Set(first.columns).subtracting(shard.columns).sorted()
            let extra = Set(shard.columns).subtracting(first.columns).sorted()
            throw DataError(
                file: shard.name,
                "columns differ from \(first.name): missing \(missing), unexpected \(extra)\(missing.isEmpty && extra.isEmpty ? " (order differs)" : "")")
        }
    }

    /// Writes `shards` as `<dir>/worker-<i>/X_train.csv, y_train.csv`, and `test` as `<dir>/test/X_test.csv,
    /// y_test.csv` when given.
    public static func write(shards: [Dataset], test: Dataset?, to directory: URL) throws {
        for (index, shard) in shards.enumerated() {
            let folder = directory.appendingPathComponent("worker-\(index + 1)")
            try writePair(shard, folder: folder, stem: "train")
        }
        if let test { try writePair(test, folder: directory.appendingPathComponent("test"), stem: "test") }
    }

    private static func writePair(_ data: Dataset, folder: URL, stem: String) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try writeCSV(folder.appendingPathComponent("X_\(stem).csv").path, columns: data.featureNames, rows: data.rows) {
            data.features[$0 * data.columns + $1]
        }
        try writeCSV(folder.appendingPathComponent("y_\(stem).csv").path, columns: ["y"], rows: data.rows) { row, _ in
            data.labels[row]
        }
    }
}
