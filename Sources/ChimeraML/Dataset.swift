/// A dense float32 table: row-major features, one label per row, named columns.
public struct Dataset: Sendable, Equatable {
    public var featureNames: [String]
    /// Row-major, `rows × columns`.
    public var features: [Float]
    public var labels: [Float]

    public init(featureNames: [String], features: [Float], labels: [Float]) {
        precondition(featureNames.isEmpty || features.count == labels.count * featureNames.count, "ragged dataset")
        self.featureNames = featureNames
        self.features = features
        self.labels = labels
    }

    public var rows: Int { labels.count }
    public var columns: Int { featureNames.count }

    /// Rows `range` as a new dataset.
    public func slice(_ range: Range<Int>) -> Dataset {
        Dataset(
            featureNames: featureNames,
            features: Array(features[(range.lowerBound * columns)..<(range.upperBound * columns)]),
            labels: Array(labels[range]))
    }

    /// The rows in `indices`, in that order (for mini-batches and bootstraps).
    public func gather(_ indices: [Int]) -> Dataset {
        var out = [Float]()
        out.reserveCapacity(indices.count * columns)
        for index in indices { out += features[(index * columns)..<((index + 1) * columns)] }
        return Dataset(featureNames: featureNames, features: out, labels: indices.map { labels[$0] })
    }

    /// Rows of several datasets with the same columns, stacked.
    public static func concatenate(_ parts: [Dataset]) -> Dataset {
        Dataset(
            featureNames: parts.first?.featureNames ?? [],
            features: parts.flatMap(\.features), labels: parts.flatMap(\.labels))
    }

    /// The distinct labels, sorted.
    public var distinctLabels: [Float] { Array(Set(labels)).sorted() }
}

/// Column names as Chimera compares them: trimmed and lower-cased.
public func normalizedColumnName(_ name: String) -> String {
    var text = Substring(name)
    while let first = text.first, first.isWhitespace { text = text.dropFirst() }
    while let last = text.last, last.isWhitespace { text = text.dropLast() }
    return text.lowercased()
}
