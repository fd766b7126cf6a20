import ArgumentParser
import ChimeraCluster
import ChimeraML
import Foundation

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Data tools.", subcommands: [Synth.self, SplitColumns.self])

    struct SplitColumns: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "split-columns",
            abstract:
                "Split data by columns for feature-partitioned fits: worker-N/ holds every row of the N-th block of columns (and the labels); test/ is copied whole."
        )

        @Option(
            help:
                "A shard folder (X_train.csv, y_train.csv), or a Chimera layout whose worker folders' rows are joined.")
        var data: String
        @Option(help: "Output folder.") var out: String
        @Option(help: "Column blocks (workers).") var workers = 4

        func run() throws {
            let root = URL(fileURLWithPath: data)
            let single = FileManager.default.fileExists(atPath: root.appendingPathComponent("X_train.csv").path)
            let folders = single ? [root] : try ShardLayout.workerFolders(root)
            let shards = try folders.map { try ShardLayout.loadShard($0) }
            try ShardLayout.checkConsistent(zip(folders, shards).map { ($0.lastPathComponent, $1.featureNames) })
            guard var all = shards.first else { throw CommandError("\(data) holds no shard") }
            guard shards.allSatisfy({ $0.labelNames == all.labelNames }) else {
                throw CommandError(
                    "the worker folders name their classes differently: split one shard folder at a time")
            }
            for shard in shards.dropFirst() {
                all.features += shard.features
                all.labels += shard.labels
            }
            guard (1...all.columns).contains(workers) else {
                throw CommandError("--workers must be 1…\(all.columns) (one column at least per block)")
            }
            let blocks = FeatureBlock.blocks(features: all.columns, parts: workers).map { all.columns($0) }
            let testFolder = root.appendingPathComponent("test")
            let test =
                FileManager.default.fileExists(atPath: testFolder.appendingPathComponent("X_test.csv").path)
                ? try ShardLayout.loadPair(
                    features: testFolder.appendingPathComponent("X_test.csv").path,
                    labels: testFolder.appendingPathComponent("y_test.csv").path) : nil
            try ShardLayout.write(shards: blocks, test: test, to: URL(fileURLWithPath: out))
            for (index, block) in blocks.enumerated() {
                let mark = URL(fileURLWithPath: out).appendingPathComponent("worker-\(index + 1)")
                    .appendingPathComponent(ShardLayout.columnBlockMark)
                try
                    "block \(index + 1) of \(workers): columns \(block.featureNames.first ?? "")…\(block.featureNames.last ?? "")\n"
                    .write(to: mark, atomically: true, encoding: .utf8)
            }
            print(
                "wrote \(out): \(all.rows) rows in \(workers) column blocks (\(blocks.map { String($0.columns) }.joined(separator: ", ")) columns)\(test == nil ? "" : ", test/ copied")"
            )
        }
    }

    struct Synth: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Write a deterministic synthetic dataset in the Python Chimera's layout (worker-N/X_train.csv, y_train.csv, test/)."
        )

        @Option(help: "Output folder.") var out: String
        @Option(help: "classification or regression.") var task = "classification"
        @Option(help: "Rows in all (train + test).") var rows = 10_000
        @Option(help: "Features.") var features = 20
        @Option(help: "Classes (classification).") var classes = 2
        @Option(help: "Informative features.") var informative = 8
        @Option(help: "Label noise (classification: flipped fraction; regression: noise scale).") var noise = 0.02
        @Flag(help: "Regression: add a non-linear term.") var nonlinear = false
        @Option(help: "Worker partitions.") var workers = 4
        @Option(help: "Held-out fraction.") var testFraction = 0.2
        @Option(help: "Seed.") var seed: UInt64 = 1

        func validate() throws {
            guard SyntheticData.Task(rawValue: task) != nil else {
                throw ValidationError("--task: classification or regression")
            }
            guard rows >= 2, features >= 1, classes >= 2, workers >= 1 else {
                throw ValidationError("sizes must be positive")
            }
            guard (0..<1).contains(testFraction) else { throw ValidationError("--test-fraction must be in [0, 1)") }
        }

        func run() throws {
            var spec = SyntheticData.Specification()
            spec.task = SyntheticData.Task(rawValue: task)!
            spec.rows = rows
            spec.features = features
            spec.classes = classes
            spec.informative = informative
            spec.noise = noise
            spec.nonlinear = nonlinear
            spec.seed = seed
            let data = SyntheticData.generate(spec)
            let (train, test) = SyntheticData.split(data, testFraction: testFraction, seed: seed &+ 1)
            try ShardLayout.write(
                shards: SyntheticData.partition(train, parts: workers), test: testFraction > 0 ? test : nil,
                to: URL(fileURLWithPath: out))
            print("wrote \(out): \(train.rows) train rows in \(workers) worker folders, \(test.rows) test rows")
        }
    }
}
