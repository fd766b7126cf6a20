public import ChimeraML
public import Foundation

/// A labels file's column: numbers, or class names.
public enum LabelColumn: Equatable, Sendable {
    case values([Float])
    case names([String])

    public var count: Int {
        switch self {
        case .values(let values): values.count
        case .names(let names): names.count
        }
    }
}

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
            features: base.appendingPathComponent("X_train.csv").path,
            labels: base.appendingPathComponent("y_train.csv").path)
    }

    /// Loads a features file and its labels file (one column) into a dataset.
    /// Labels are numbers, or class names ("setosa", "yes"; then `labelNames` holds them).
    public static func loadPair(features featuresPath: String, labels labelsPath: String) throws -> Dataset {
        let x = try CSVTable.read(featuresPath)
        let y = try loadLabelColumn(labelsPath)
        guard x.rows > 0 else { throw DataError(file: featuresPath, "has no data rows (empty shard)") }
        guard x.rows == y.count else {
            throw DataError(file: labelsPath, "has \(y.count) rows but \(featuresPath) has \(x.rows)")
        }
        switch y {
        case .values(let values): return Dataset(featureNames: x.columns, features: x.values, labels: values)
        case .names(let names): return Dataset(featureNames: x.columns, features: x.values, labelNames: names)
        }
    }

    /// Loads a features file alone (for prediction).
    public static func loadFeatures(_ path: String) throws -> (columns: [String], rows: [[Float]]) {
        let x = try CSVTable.read(path)
        return (x.columns, (0..<x.rows).map { Array(x.values[($0 * x.columns.count)..<(($0 + 1) * x.columns.count)]) })
    }

    /// Loads a labels file of numbers alone.
    public static func loadLabels(_ path: String) throws -> [Float] {
        switch try loadLabelColumn(path) {
        case .values(let values): return values
        case .names: throw DataError(file: path, "holds class names; numbers expected here")
        }
    }

    /// Loads a labels file (one column): numbers, or else class names — text in any cell makes the
    /// column names, and then an empty or missing-value cell ("", NaN, NA, null, None) is an error.
    public static func loadLabelColumn(_ path: String) throws -> LabelColumn {
        do {
            let y = try CSVTable.read(path)
            guard y.columns.count == 1 else { throw labelColumns(path, y.columns) }
            return .values(y.values)
        } catch let error as DataError where error.cellNotNumeric {
            let (columns, cells) = try CSVTable.readText(path)
            guard columns.count == 1 else { throw labelColumns(path, columns) }
            for cell in cells where isMissingValue(cell.text) {
                throw DataError(file: path, row: cell.row, column: columns[0], "missing label (\"\(cell.text)\")")
            }
            return .names(cells.map(\.text))
        }
    }

    private static func labelColumns(_ path: String, _ columns: [String]) -> DataError {
        let index =
            columns.count == 2 && columns[0].hasPrefix("unnamed: ")
            ? ": the first looks like the index column pandas writes by default (to_csv(..., index=False) leaves it out)"
            : ""
        return DataError(
            file: path,
            "must have exactly one column, has \(columns.count) (\(columns.joined(separator: ", ")))\(index)")
    }

    private static func isMissingValue(_ text: String) -> Bool {
        ["", "nan", "na", "n/a", "null", "none"].contains(text.lowercased())
    }

    /// Checks that every shard has the same columns in the same order; names the first that differs.
    public static func checkConsistent(_ shards: [(name: String, columns: [String])]) throws {
        guard let first = shards.first else { return }
        for shard in shards.dropFirst() where shard.columns != first.columns {
            let missing = Set(first.columns).subtracting(shard.columns).sorted()
            let extra = Set(shard.columns).subtracting(first.columns).sorted()
            throw DataError(
                file: shard.name,
                "columns differ from \(first.name): missing \(missing), unexpected \(extra)\(missing.isEmpty && extra.isEmpty ? " (order differs)" : "")"
            )
        }
    }

    /// The file `chimera data split-columns` leaves in each block's folder.
    public static let columnBlockMark = "column-block"

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
        let labels = folder.appendingPathComponent("y_\(stem).csv")
        if data.labelNames.isEmpty {
            try writeCSV(labels.path, columns: ["y"], rows: data.rows) { row, _ in data.labels[row] }
        } else {
            let text = (["y"] + data.labels.map { data.labelNames[Int($0)] }).joined(separator: "\n") + "\n"
            try text.write(to: labels, atomically: true, encoding: .utf8)
        }
    }
}
