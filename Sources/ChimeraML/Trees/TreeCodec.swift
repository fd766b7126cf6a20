/// The compact binary form of a `DecisionTree` (what workers send the master), version 1.
///
/// Little-endian throughout:
/// ```
/// "CHTR" | version u8 = 1 | task u8 (0 classification, 1 regression) | reserved u16 = 0
/// features u32 | outputs u32 | nodes u32
/// nodes × { feature i32 (−1: leaf) | threshold f32 | left u32 | right u32 }
/// nodes × outputs × value f32
/// ```
/// The decoder accepts only well-formed trees: every child index is larger than its parent's and
/// referenced once, leaves have no children, features are in range, numbers are finite and
/// classification values are probabilities.
public enum TreeCodec {
    public static let magic: [UInt8] = Array("CHTR".utf8)
    public static let version: UInt8 = 1
    static let headerBytes = 20
    static let nodeBytes = 16
    /// Refuses trees claiming more nodes than this (a 4-byte count must not make us allocate gigabytes).
    public static let maxNodes = 1 << 24

    public static func encode(_ tree: DecisionTree) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(headerBytes + tree.nodeCount * (nodeBytes + 4 * tree.outputs))
        out += magic
        out.append(version)
        out.append(tree.task == .classification ? 0 : 1)
        out += [0, 0]
        append(UInt32(tree.featureCount), to: &out)
        append(UInt32(tree.outputs), to: &out)
        append(UInt32(tree.nodeCount), to: &out)
        for node in 0..<tree.nodeCount {
            append(UInt32(bitPattern: tree.feature[node]), to: &out)
            append(tree.threshold[node].bitPattern, to: &out)
            append(tree.left[node], to: &out)
            append(tree.right[node], to: &out)
        }
        for value in tree.values { append(value.bitPattern, to: &out) }
        return out
    }

    public static func decode(_ bytes: some Collection<UInt8>) throws(TreeDecodingError) -> DecisionTree {
        let bytes = Array(bytes)
        guard bytes.count >= headerBytes else { throw .truncated(expected: headerBytes, actual: bytes.count) }
        guard Array(bytes[0..<4]) == magic else { throw .badMagic }
        guard bytes[4] == version else { throw .unsupportedVersion(bytes[4]) }
        guard bytes[5] <= 1 else { throw .invalid("task byte \(bytes[5])") }
        guard bytes[6] == 0 && bytes[7] == 0 else { throw .invalid("reserved bytes are not zero") }
        let task: TreeTask = bytes[5] == 0 ? .classification : .regression
        let features = Int(readUInt32(bytes, 8))
        let outputs = Int(readUInt32(bytes, 12))
        let nodes = Int(readUInt32(bytes, 16))
        guard features >= 1 else { throw .invalid("a tree needs at least one feature") }
        guard outputs >= 1 && outputs <= 65_536 && (task == .classification || outputs == 1) else {
            throw .invalid("\(outputs) outputs for a \(task.rawValue) tree")
        }
        guard nodes >= 1 && nodes <= maxNodes else { throw .invalid("\(nodes) nodes") }
        let expected = headerBytes + nodes * nodeBytes + nodes * outputs * 4
        guard bytes.count == expected else {
            throw bytes.count < expected
                ? .truncated(expected: expected, actual: bytes.count) : .trailingBytes(bytes.count - expected)
        }
        var feature = [Int32](repeating: 0, count: nodes)
        var threshold = [Float](repeating: 0, count: nodes)
        var left = [UInt32](repeating: 0, count: nodes)
        var right = [UInt32](repeating: 0, count: nodes)
        var parents = [UInt8](repeating: 0, count: nodes)
        for node in 0..<nodes {
            let at = headerBytes + node * nodeBytes
            feature[node] = Int32(bitPattern: readUInt32(bytes, at))
            threshold[node] = Float(bitPattern: readUInt32(bytes, at + 4))
            left[node] = readUInt32(bytes, at + 8)
            right[node] = readUInt32(bytes, at + 12)
            if feature[node] == -1 {
                guard left[node] == 0 && right[node] == 0 else { throw .invalid("leaf \(node) has children") }
                continue
            }
            guard feature[node] >= 0 && Int(feature[node]) < features else {
                throw .invalid("node \(node) splits on feature \(feature[node]) of \(features)")
            }
            guard threshold[node].isFinite else { throw .invalid("node \(node) has a non-finite threshold") }
            for child in [left[node], right[node]] {
                guard Int(child) > node && Int(child) < nodes else { throw .invalid("node \(node) has child \(child)") }
                parents[Int(child)] += 1
                guard parents[Int(child)] == 1 else { throw .invalid("node \(child) has two parents") }
            }
        }
        if let orphan = (1..<nodes).first(where: { parents[$0] == 0 }) {
            throw .invalid("node \(orphan) is unreachable")
        }
        let valuesStart = headerBytes + nodes * nodeBytes
        var values = [Float](repeating: 0, count: nodes * outputs)
        for i in values.indices {
            let value = Float(bitPattern: readUInt32(bytes, valuesStart + 4 * i))
            guard value.isFinite else { throw .invalid("value \(i) is not finite") }
            if task == .classification && !(value >= 0 && value <= 1.0001) {
                throw .invalid("class probability \(value) outside [0, 1]")
            }
            values[i] = value
        }
        return DecisionTree(
            task: task, featureCount: features, outputs: outputs, feature: feature, threshold: threshold, left: left,
            right: right, values: values)
    }

    private static func append(_ value: UInt32, to out: inout [UInt8]) {
        out += [UInt8(value & 0xFF), UInt8((value >> 8) & 0xFF), UInt8((value >> 16) & 0xFF), UInt8(value >> 24)]
    }

    private static func readUInt32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }
}

/// Why tree bytes were refused.
public enum TreeDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(expected: Int, actual: Int)
    case badMagic
    case unsupportedVersion(UInt8)
    case trailingBytes(Int)
    case invalid(String)

    public var description: String {
        switch self {
        case .truncated(let expected, let actual): "tree bytes truncated: \(actual) of \(expected)"
        case .badMagic: "not a Chimera tree (magic is not CHTR)"
        case .unsupportedVersion(let version):
            "tree encoding version \(version) is not supported (expected \(TreeCodec.version))"
        case .trailingBytes(let count): "\(count) bytes after the tree"
        case .invalid(let reason): "malformed tree: \(reason)"
        }
    }
}
