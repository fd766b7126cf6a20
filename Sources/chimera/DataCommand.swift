import ArgumentParser
import ChimeraCluster
import ChimeraML
import Foundation

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Data tools.", subcommands: [Synth.self])

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
