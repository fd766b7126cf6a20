/// A dense float32 table: row-major features, one label per row, named columns.
public struct Dataset: Sendable, Equatable {
    public var featureNames: [String]
    /// Row-major, `rows × columns`.
    public var features: [Float]
    public var labels: [Float]
    /// Class names, when the labels file held names ("setosa", "yes"): `labels` are then indices into
    /// this list (distinct, sorted). Empty for numeric labels.
    public var labelNames: [String]

    public init(featureNames: [String], features: [Float], labels: [Float], labelNames: [String] = []) {
        precondition(featureNames.isEmpty || features.count == labels.count * featureNames.count, "ragged dataset")
        self.featureNames = featureNames
        self.features = features
        self.labels = labels
        self.labelNames = labelNames
    }

    /// A dataset whose labels are `names` (one per row): indices into their sorted distinct list.
    public init(featureNames: [String], features: [Float], labelNames names: [String]) {
        let distinct = Array(Set(names)).sorted()
        let index = Dictionary(uniqueKeysWithValues: distinct.enumerated().map { ($1, Float($0)) })
        self.init(
            featureNames: featureNames, features: features, labels: names.map { index[$0]! }, labelNames: distinct)
    }

    public var rows: Int { labels.count }
    public var columns: Int { featureNames.count }

    /// Rows `range` as a new dataset.
    public func slice(_ range: Range<Int>) -> Dataset {
        Dataset(
            featureNames: featureNames,
            features: Array(features[(range.lowerBound * columns)..<(range.upperBound * columns)]),
            labels: Array(labels[range]), labelNames: labelNames)
    }

    /// The rows in `indices`, in that order (for mini-batches and bootstraps).
    public func gather(_ indices: [Int]) -> Dataset {
        var out = [Float]()
        out.reserveCapacity(indices.count * columns)
        for index in indices { out += features[(index * columns)..<((index + 1) * columns)] }
        return Dataset(
            featureNames: featureNames, features: out, labels: indices.map { labels[$0] }, labelNames: labelNames)
    }

    /// Rows of several datasets with the same columns, stacked (named labels re-indexed into the union
    /// of the parts' names).
    public static func concatenate(_ parts: [Dataset]) -> Dataset {
        let names = Array(Set(parts.flatMap(\.labelNames))).sorted()
        precondition(names.isEmpty || parts.allSatisfy { !$0.labelNames.isEmpty }, "named and numeric labels mixed")
        let labels = names.isEmpty ? parts.flatMap(\.labels) : parts.flatMap { $0.relabelled(into: names)!.labels }
        return Dataset(
            featureNames: parts.first?.featureNames ?? [], features: parts.flatMap(\.features), labels: labels,
            labelNames: names)
    }

    /// The distinct labels, sorted.
    public var distinctLabels: [Float] { Array(Set(labels)).sorted() }

    /// The same rows with named labels re-indexed into `classNames` (a job's classes: the union of
    /// every worker's names); nil when a name of this shard is not among them.
    public func relabelled(into classNames: [String]) -> Dataset? {
        if classNames == labelNames { return self }
        guard !labelNames.isEmpty else { return nil }
        let index = Dictionary(classNames.enumerated().map { ($1, Float($0)) }, uniquingKeysWith: { first, _ in first })
        var map: [Float] = []
        for name in labelNames {
            guard let position = index[name] else { return nil }
            map.append(position)
        }
        return Dataset(
            featureNames: featureNames, features: features, labels: labels.map { map[Int($0)] }, labelNames: classNames)
    }
}

/// Column names as Chimera compares them: trimmed and lower-cased.
public func normalizedColumnName(_ name: String) -> String {
    var text = Substring(name)
    while let first = text.first, first.isWhitespace { text = text.dropFirst() }
    while let last = text.last, last.isWhitespace { text = text.dropLast() }
    return text.lowercased()
}

extension Dataset {
    /// A 64-bit FNV-1a digest of the columns, values, labels and label names: the same shard gives the
    /// same digest in every process, whatever its worker is called (seeds derive from it).
    public var contentDigest: UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        func mix(_ text: String) {
            for byte in text.utf8 { mix(byte) }
            mix(0)
        }
        for name in featureNames { mix(name) }
        for name in labelNames { mix(name) }
        for values in [features, labels] {
            for value in values {
                let bits = value.bitPattern
                mix(UInt8(truncatingIfNeeded: bits))
                mix(UInt8(truncatingIfNeeded: bits >> 8))
                mix(UInt8(truncatingIfNeeded: bits >> 16))
                mix(UInt8(truncatingIfNeeded: bits >> 24))
            }
            mix(0xFF)
        }
        return hash
    }

    /// Every row, only the columns in `range` (a feature block).
    public func columns(_ range: Range<Int>) -> Dataset {
        var block: [Float] = []
        block.reserveCapacity(rows * range.count)
        for row in 0..<rows {
            block += features[(row * columns + range.lowerBound)..<(row * columns + range.upperBound)]
        }
        var out = self
        out.featureNames = Array(featureNames[range])
        out.features = block
        return out
    }

    /// A digest of the labels alone (their names and values, in row order).
    public var labelDigest: UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for name in labelNames {
            for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            hash = hash &* 0x100_0000_01b3
        }
        for value in labels { hash = (hash ^ UInt64(value.bitPattern)) &* 0x100_0000_01b3 }
        return hash
    }
}
