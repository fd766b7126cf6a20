import ChimeraCluster
import ChimeraML
import ChimeraSweep
import Testing

@Suite("Sweep configuration")
struct SweepConfigurationTests {
    @Test("a full configuration parses")
    func parses() throws {
        let config = try SweepConfiguration.parse(
            yaml: """
                name: stragglers
                data: {task: classification, rows: 5000, features: 10, seed: 3, test_fraction: 0.25}
                model: logistic
                iterations: 150
                learning_rates: [0.5, 0.1]
                staleness: [0, 2, unbounded]
                workers: [2, 4]
                repeats: 2
                target_loss: 0.3
                delay_ms: 3
                fit: {batch_size: 8, penalty: l1, raw_features: true}
                stragglers:
                  - name: none
                  - name: transient
                    workers: all
                    pause_probability: 0.05
                    pause_ms: 40
                  - name: slow-first
                    workers: [1]
                    slowdown: 3
                """)
        #expect(config.name == "stragglers")
        #expect(config.data.rows == 5000 && config.data.seed == 3 && config.testFraction == 0.25)
        #expect(config.staleness == [0, 2, nil])
        #expect(config.workers == [2, 4])
        #expect(config.learningRates == [0.5, 0.1])
        #expect(config.stragglers.count == 3)
        #expect(config.model == .logisticRegression && config.iterations == 150)
        let fit = try config.fitSettings(learningRate: 0.5, staleness: nil)
        let master = try TrainingConfiguration(wire: fit.wire(mode: .parameterServer))
        #expect(
            master.batchSize == 8 && master.penalty == .l1 && !master.standardize && master.staleness == nil
                && master.eta0 == 0.5)
        #expect(master.maxIterations == 150 && master.model == .logisticRegression && master.seed == 42)
        #expect(config.stragglers[1].straggler.pauseProbability == 0.05 && config.stragglers[1].workers == nil)
        #expect(config.stragglers[2].workers == [1] && config.stragglers[2].straggler.slowdown == 3)
    }

    @Test("a grid block adds axes: every combination of its values, each checked by the vocabulary")
    func gridAxes() throws {
        let config = try SweepConfiguration.parse(
            yaml: """
                model: mlp
                staleness: [0]
                grid: {wire_dtype: [float32, bfloat16], algorithm: [ssgd, ma, bmuf]}
                """)
        #expect(config.grid.map(\.name) == ["algorithm", "wire_dtype"])
        #expect(config.grid[0].values == [.text("ssgd"), .text("ma"), .text("bmuf")])
        let settings = try config.fitSettings(
            learningRate: 0.1, staleness: 0, grid: ["algorithm": .text("bmuf"), "wire_dtype": .text("bfloat16")])
        #expect(settings["algorithm"] == .text("bmuf") && settings["wire_dtype"] == .text("bfloat16"))
        #expect(settings["model"] == .text("mlp"))
    }

    @Test(
        "malformed settings name their field",
        arguments: [
            ("iterations: lots", "iterations"),
            ("staleness: [0, -1]", "staleness[1]"),
            ("stragglers:\n  - pause_probability: 2", "stragglers[0].pause_probability"),
            ("stragglers:\n  - workers: [0]", "stragglers[0].workers"),
            ("data: {rows: 5, colour: blue}", "data.rows"),
            ("data: {colour: blue}", "data.colour"),
            ("workerz: [4]", "workerz"),
            ("model: forest", "model"),
            ("model: tree_classifier", "model"),
            ("fit: {max_depth: 3}", "fit.max_depth"),
            ("fit: {eta0: 0.1}", "fit.eta0"),
            ("fit: {batchsize: 8}", "fit.batchsize"),
            ("fit: {batch_size: eight}", "fit.batch_size"),
            ("grid: {algorithm: [ssgd, sgdd]}", "grid.algorithm[1]"),
            ("grid: {eta0: [0.1, 0.2]}", "grid.eta0"),
            ("grid: {algorithm: ma}", "grid.algorithm"),
            ("grid: {max_depth: [3]}", "grid.max_depth[0]"),
            ("fit: {algorithm: ma}\ngrid: {algorithm: [ssgd]}", "grid.algorithm"),
            ("- just a list", "(document)"),
            ("key: [unclosed", "(document)"),
        ])
    func namesTheField(yaml: String, field: String) {
        #expect(throws: SweepConfigurationError.self) { try SweepConfiguration.parse(yaml: yaml) }
        do {
            _ = try SweepConfiguration.parse(yaml: yaml)
        } catch {
            #expect(error.field == field, "\(error)")
        }
    }
}
