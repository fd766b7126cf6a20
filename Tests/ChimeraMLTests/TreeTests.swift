import ChimeraML
import Testing

private func table(_ rows: [[Float]], labels: [Float]) -> Dataset {
    Dataset(featureNames: (0..<rows[0].count).map { "x\($0)" }, features: rows.flatMap { $0 }, labels: labels)
}

@Suite("Decision trees")
struct TreeTests {
    /// OR of two bits. Root: both features leave a {0, 1} node (weighted gini 2·0.5 = 1.0) and a pure
    /// node, a tie broken towards feature 0; its left child then splits on feature 1.
    @Test("gini and entropy trees on OR have the hand-computed splits", arguments: [SplitCriterion.gini, .entropy])
    func handComputedClassification(criterion: SplitCriterion) throws {
        let data = table([[0, 0], [0, 1], [1, 0], [1, 1]], labels: [0, 1, 1, 1])
        var settings = TreeSettings()
        settings.criterion = criterion
        let builder = try TreeBuilder(data: data, bins: FeatureBins(data), classes: [0, 1], settings: settings)
        var random = SplitMix64(seed: 1)
        let tree = builder.fit(random: &random)
        #expect(tree.feature == [0, 1, -1, -1, -1])
        #expect(tree.threshold[0] == 0.5 && tree.threshold[1] == 0.5)
        #expect(tree.left == [1, 3, 0, 0, 0] && tree.right == [2, 4, 0, 0, 0])
        // Root probabilities 1/4, 3/4; leaves pure.
        #expect(tree.values == [0.25, 0.75, 0.5, 0.5, 0, 1, 1, 0, 0, 1])
        #expect(tree.predict(table([[0, 0], [0, 1], [1, 0]], labels: [0, 0, 0])) == [1, 0, 0, 1, 0, 1])
    }

    /// y = 1 1 2 8 9 9 on x = 1…6. Squared errors of the root's candidate cuts: after 1 row 62.8,
    /// after 2 34, after 3 0.667 + 0.667, after 4 34: the cut is at 3.5. Depth 2 then cuts {1, 1, 2}
    /// at 2.5 and {8, 9, 9} at 4.5.
    @Test("a regression tree has the hand-computed splits and leaf means")
    func handComputedRegression() throws {
        let data = table([[1], [2], [3], [4], [5], [6]], labels: [1, 1, 2, 8, 9, 9])
        var settings = TreeSettings()
        settings.criterion = .squaredError
        settings.maxDepth = 2
        let builder = try TreeBuilder(data: data, bins: FeatureBins(data), classes: [], settings: settings)
        var random = SplitMix64(seed: 1)
        let tree = builder.fit(random: &random)
        #expect(tree.feature == [0, 0, 0, -1, -1, -1, -1])
        #expect(tree.threshold[0...2] == [3.5, 2.5, 4.5])
        #expect(tree.values[3...6] == [1, 2, 8, 9])
        #expect(tree.depth == 2 && tree.leafCount == 4)
        #expect(tree.predict(table([[0], [3.2], [4.4], [100]], labels: [0, 0, 0, 0])) == [1, 2, 8, 9])

        // With three leaves the best-first order expands the left child (equal decrease, older node).
        settings.maxLeafNodes = 3
        settings.maxDepth = 0
        var again = SplitMix64(seed: 1)
        let bounded = try TreeBuilder(data: data, bins: FeatureBins(data), classes: [], settings: settings).fit(
            random: &again)
        #expect(bounded.leafCount == 3)
        #expect(bounded.feature == [0, 0, -1, -1, -1])
        #expect(bounded.threshold[1] == 2.5)
    }

    @Test("min samples per leaf and per split are respected")
    func minimumSamples() throws {
        let data = table((0..<20).map { [Float($0)] }, labels: (0..<20).map { $0 == 0 ? 1 : 0 })
        var settings = TreeSettings()
        settings.minSamplesLeaf = 5
        var random = SplitMix64(seed: 3)
        let tree = try TreeBuilder(data: data, bins: FeatureBins(data), classes: [0, 1], settings: settings).fit(
            random: &random)
        var counts = [Int](repeating: 0, count: tree.nodeCount)
        data.features.withUnsafeBufferPointer { x in
            for r in 0..<data.rows { counts[tree.leaf(UnsafeBufferPointer(rebasing: x[r..<(r + 1)]))] += 1 }
        }
        for node in 0..<tree.nodeCount where tree.feature[node] < 0 { #expect(counts[node] >= 5) }
    }

    @Test("bagged trees are deterministic under a seed and differ between workers")
    func determinism() throws {
        var spec = SyntheticData.Specification()
        spec.rows = 600
        spec.features = 6
        let data = SyntheticData.generate(spec)
        var settings = TreeSettings()
        settings.maxFeatures = .sqrt
        settings.maxDepth = 6
        let a = try Bagging.fit(data: data, classes: [0, 1], settings: settings, trees: 3, workerSeed: 7)
        let b = try Bagging.fit(data: data, classes: [0, 1], settings: settings, trees: 3, workerSeed: 7)
        let c = try Bagging.fit(data: data, classes: [0, 1], settings: settings, trees: 3, workerSeed: 8)
        #expect(a.map(TreeCodec.encode) == b.map(TreeCodec.encode))
        #expect(a.map(TreeCodec.encode) != c.map(TreeCodec.encode))
        #expect(a[0] != a[1])
    }

    @Test("bagging regression on a non-linear synthetic set reaches R² ≥ 0.8")
    func regressionQuality() throws {
        var spec = SyntheticData.Specification()
        spec.task = .regression
        spec.rows = 5_000
        spec.features = 4
        spec.informative = 2
        spec.nonlinear = true
        spec.noise = 0.1
        let (train, test) = SyntheticData.split(SyntheticData.generate(spec), testFraction: 0.2, seed: 2)
        var settings = TreeSettings()
        settings.criterion = .squaredError
        settings.minSamplesLeaf = 3
        var members: [DecisionTree] = []
        for (index, shard) in SyntheticData.partition(train, parts: 4).enumerated() {
            members += try Bagging.fit(
                data: shard, classes: [], settings: settings, trees: 2, workerSeed: UInt64(index))
        }
        let ensemble = TreeEnsemble(task: .regression, featureNames: train.featureNames, classes: [], trees: members)
        let predicted = ensemble.meanOutputs(test)
        let mean = test.labels.reduce(0, +) / Float(test.rows)
        let residual = zip(predicted, test.labels).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        let total = test.labels.reduce(Float(0)) { $0 + ($1 - mean) * ($1 - mean) }
        let r2 = 1 - residual / total
        #expect(r2 >= 0.8, "R² \(r2)")
    }

    @Test("multi-class ensembles average probabilities and answer the most probable label")
    func multiClass() throws {
        var spec = SyntheticData.Specification()
        spec.rows = 3_000
        spec.features = 5
        spec.classes = 4
        spec.informative = 5
        spec.noise = 0
        let (train, test) = SyntheticData.split(SyntheticData.generate(spec), testFraction: 0.2, seed: 3)
        let members = try Bagging.fit(
            data: train, classes: [0, 1, 2, 3], settings: TreeSettings(), trees: 5, workerSeed: 1)
        let ensemble = TreeEnsemble(
            task: .classification, featureNames: train.featureNames, classes: [0, 1, 2, 3], trees: members)
        let means = ensemble.meanOutputs(test)
        for r in 0..<test.rows {
            #expect(abs(means[(r * 4)..<(r * 4 + 4)].reduce(0, +) - 1) < 1e-4)
        }
        let labels = ensemble.predictions(fromMeans: means, rows: test.rows)
        let accuracy = Double(zip(labels, test.labels).filter { $0 == Double($1) }.count) / Double(test.rows)
        #expect(accuracy >= 0.85, "accuracy \(accuracy)")
    }

    @Test("max_features parses every form and rejects the rest")
    func maxFeatures() throws {
        #expect(try MaxFeatures(parsing: "sqrt").count(of: 30) == 5)
        #expect(try MaxFeatures(parsing: "log2").count(of: 30) == 4)
        #expect(try MaxFeatures(parsing: "0.5").count(of: 30) == 15)
        #expect(try MaxFeatures(parsing: "").count(of: 30) == 30)
        #expect(try MaxFeatures(parsing: "7").count(of: 30) == 7)
        #expect(try MaxFeatures(parsing: "64").count(of: 30) == 30)
        for bad in ["0", "1.5", "-2", "half"] { #expect(throws: InvalidSetting.self) { try MaxFeatures(parsing: bad) } }
    }
}

@Suite("Tree encoding")
struct TreeCodecTests {
    func sampleTree() throws -> DecisionTree {
        var spec = SyntheticData.Specification()
        spec.rows = 400
        spec.features = 5
        spec.classes = 3
        let data = SyntheticData.generate(spec)
        var settings = TreeSettings()
        settings.maxDepth = 4
        return try Bagging.fit(data: data, classes: [0, 1, 2], settings: settings, trees: 1, workerSeed: 1)[0]
    }

    @Test("encode then decode gives the same tree")
    func roundTrip() throws {
        let tree = try sampleTree()
        let bytes = TreeCodec.encode(tree)
        #expect(bytes.count == 20 + tree.nodeCount * (16 + 4 * 3))
        #expect(try TreeCodec.decode(bytes) == tree)
    }

    @Test("malformed tree bytes are rejected with a typed error")
    func malformed() throws {
        let good = TreeCodec.encode(try sampleTree())
        func patched(_ at: Int, _ value: UInt8) -> [UInt8] {
            var copy = good
            copy[at] = value
            return copy
        }
        #expect(throws: TreeDecodingError.truncated(expected: 20, actual: 3)) { try TreeCodec.decode(good.prefix(3)) }
        #expect(throws: TreeDecodingError.badMagic) { try TreeCodec.decode(patched(0, 0x58)) }
        #expect(throws: TreeDecodingError.unsupportedVersion(2)) { try TreeCodec.decode(patched(4, 2)) }
        #expect(throws: TreeDecodingError.trailingBytes(1)) { try TreeCodec.decode(good + [0]) }
        #expect(throws: TreeDecodingError.self) { try TreeCodec.decode(good.dropLast()) }
        // The root's left child pointing at the root itself: a cycle.
        #expect(throws: TreeDecodingError.invalid("node 0 has child 0")) {
            var copy = good
            for i in 0..<4 { copy[28 + i] = 0 }
            return try TreeCodec.decode(copy)
        }
        // The root splitting on a feature the tree does not have.
        #expect(throws: TreeDecodingError.invalid("node 0 splits on feature 9 of 5")) {
            try TreeCodec.decode(patched(20, 9))
        }
        // A NaN probability.
        #expect(throws: TreeDecodingError.self) {
            var copy = good
            let valuesStart = good.count - 4
            copy.replaceSubrange(valuesStart..<good.count, with: [0x00, 0x00, 0xC0, 0x7F])
            return try TreeCodec.decode(copy)
        }
        // Random corruption never crashes: it decodes to a valid tree or throws.
        var random = SplitMix64(seed: 9)
        for _ in 0..<2_000 {
            var copy = good
            for _ in 0..<(1 + Int(random.next() % 4)) {
                copy[Int(random.next() % UInt64(copy.count))] = UInt8(truncatingIfNeeded: random.next())
            }
            if let tree = try? TreeCodec.decode(copy) {
                #expect(tree.nodeCount >= 1)
                _ = tree.depth
            }
        }
    }
}
