/// Per-column sums that workers send so the master can standardise globally without seeing the data.
public struct ColumnMoments: Sendable, Equatable {
    public var count: Double
    public var sum: [Double]
    public var sumOfSquares: [Double]

    public init(columns: Int) {
        count = 0
        sum = Array(repeating: 0, count: columns)
        sumOfSquares = Array(repeating: 0, count: columns)
    }

    public init(_ data: Dataset) {
        self.init(columns: data.columns)
        count = Double(data.rows)
        for row in 0..<data.rows {
            for column in 0..<data.columns {
                let value = Double(data.features[row * data.columns + column])
                sum[column] += value
                sumOfSquares[column] += value * value
            }
        }
    }

    public static func + (a: ColumnMoments, b: ColumnMoments) -> ColumnMoments {
        var out = a
        out.count += b.count
        for i in out.sum.indices {
            out.sum[i] += b.sum[i]
            out.sumOfSquares[i] += b.sumOfSquares[i]
        }
        return out
    }

    /// Mean and scale (standard deviation, 1 for constant columns).
    public var standardizer: Standardizer {
        let n = max(count, 1)
        let mean = sum.map { $0 / n }
        let scale = zip(sumOfSquares, mean).map { squares, m -> Double in
            let variance = max(squares / n - m * m, 0)
            return variance > 1e-24 ? variance.squareRoot() : 1
        }
        return Standardizer(mean: mean.map(Float.init), scale: scale.map(Float.init))
    }
}

/// x' = (x − mean) / scale per column.
public struct Standardizer: Sendable, Equatable, Codable {
    public var mean: [Float]
    public var scale: [Float]

    public init(mean: [Float], scale: [Float]) {
        self.mean = mean
        self.scale = scale
    }

    public func apply(to data: Dataset) -> Dataset {
        var out = data
        let columns = data.columns
        mean.withUnsafeBufferPointer { m in
            scale.withUnsafeBufferPointer { s in
                out.features.withUnsafeMutableBufferPointer { x in
                    for row in 0..<data.rows {
                        let base = row * columns
                        for column in 0..<columns { x[base + column] = (x[base + column] - m[column]) / s[column] }
                    }
                }
            }
        }
        return out
    }
}
