import ChimeraSweep
import ChimeraTestSupport
import Foundation
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

@Suite("chimera sweep, end to end")
struct SweepProcessTests {
    @Test("a small sweep runs end to end; outputs parse; same start for every run; no bound exceeded")
    func smokeSweep() async throws {
        try await blocking {
            let out = FileManager.default.temporaryDirectory.appendingPathComponent(
                "chimera-sweep-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: out) }
            let config = repositoryRoot.appendingPathComponent("deploy/sweeps/smoke.yaml").path
            let result = try runChimera(["sweep", "--config", config, "--out", out.path])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("run 4/4"))

            let runs = try JSONDecoder().decode(
                [SweepRun].self, from: Data(contentsOf: out.appendingPathComponent("sweep.json")))
            #expect(runs.count == 4)
            #expect(Set(runs.map(\.staleness)) == [0, 2])
            for run in runs {
                #expect(run.iterations == 30)
                #expect(run.points.count >= 2 && run.points.first?.iteration == 0)
                #expect(
                    run.points.last?.heldOutLoss ?? 1 < run.points.first?.heldOutLoss ?? 0, "loss falls in \(run.id)")
                // From the recorded clocks: the fastest never ran more than s + 1 pushes ahead of the slowest.
                let bound = run.staleness ?? Int.max - 1
                #expect(run.maxClockSpread <= bound + 1, "\(run.id): spread \(run.maxClockSpread) with s = \(bound)")
                #expect(run.stalenessHistogram.count - 1 <= bound, "\(run.id): histogram \(run.stalenessHistogram)")
            }
            // Identical initial weights and partitions in every run.
            #expect(Set(runs.map(\.initialWeightsDigest)).count == 1)
            #expect(Set(runs.map(\.partitionDigests)).count == 1)
            #expect(runs[0].partitionDigests.count == 2)

            let csv = try String(contentsOf: out.appendingPathComponent("runs.csv"), encoding: .utf8)
            #expect(csv.split(separator: "\n").count == 5)
            let iterations = try String(contentsOf: out.appendingPathComponent("iterations.csv"), encoding: .utf8)
            #expect(iterations.split(separator: "\n").count == 1 + runs.reduce(0) { $0 + $1.points.count })
            let svgs = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix(".svg") }
            #expect(svgs.count == 4)
            for svg in svgs {
                let text = try String(contentsOf: out.appendingPathComponent(svg), encoding: .utf8)
                #expect(text.hasPrefix("<svg") && text.contains("<polyline") && text.contains("s=2"))
                #expect(XMLParser(data: Data(text.utf8)).parse(), "\(svg) is well-formed XML")
            }
            let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
            #expect(html.contains("<table>") && html.contains("<img src=\"loss_vs_time_"))
        }
    }

    @Test(
        "a sweep over pipeline stages and micro-batches on one shard every worker reads: each run the same model, scored"
    )
    func pipelineGrid() async throws {
        try await blocking {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent(
                "chimera-sweep-pipeline-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: root) }
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            let config = root.appendingPathComponent("sweep.yaml")
            let digits = repositoryRoot.appendingPathComponent("deploy/data/digits").path
            try """
            data: {path: \(digits)/worker-1, test: \(digits)/test}
            model: mlp
            iterations: 60
            staleness: [0]
            workers: [2]
            learning_rates: [0.1]
            fit: {hidden: [32, 16], batch_size: 32, momentum: 0.9, parallelism: pipeline}
            grid: {stages: [1, 2], micro_batches: [2, 4]}
            """.write(to: config, atomically: true, encoding: .utf8)
            let out = root.appendingPathComponent("out")
            let result = try runChimera(["sweep", "--config", config.path, "--out", out.path])
            #expect(result.status == 0, "\(result.stderr)")
            let runs = try JSONDecoder().decode(
                [SweepRun].self, from: Data(contentsOf: out.appendingPathComponent("sweep.json")))
            #expect(
                Set(runs.map(\.gridLabel)) == [
                    "micro_batches=2 stages=1", "micro_batches=4 stages=1", "micro_batches=2 stages=2",
                    "micro_batches=4 stages=2",
                ])
            // A pipeline iteration is the whole batch's step: every split trains the same network.
            let accuracies = runs.compactMap(\.heldOutAccuracy)
            #expect(accuracies.count == 4 && accuracies.min()! > 0.7, "\(accuracies)")
            #expect(accuracies.max()! - accuracies.min()! < 1e-3, "\(accuracies)")
        }
    }

    @Test(
        "a sweep over algorithm (ssgd, bmuf, easgd) and wire dtype trains an MLP on the digits: one run per combination, each scored"
    )
    func algorithmGrid() async throws {
        try await blocking {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent(
                "chimera-sweep-grid-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: root) }
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            let config = root.appendingPathComponent("sweep.yaml")
            try """
            data: {path: \(repositoryRoot.path)/deploy/data/digits}
            model: mlp
            iterations: 40
            staleness: [0]
            workers: [2]
            learning_rates: [0.1]
            fit: {hidden: [32], batch_size: 32, momentum: 0.9, rho: 4}
            grid: {algorithm: [ssgd, bmuf, easgd], wire_dtype: [float32, bfloat16]}
            """.write(to: config, atomically: true, encoding: .utf8)
            let out = root.appendingPathComponent("out")
            let result = try runChimera(["sweep", "--config", config.path, "--out", out.path])
            #expect(result.status == 0, "\(result.stderr)")
            let runs = try JSONDecoder().decode(
                [SweepRun].self, from: Data(contentsOf: out.appendingPathComponent("sweep.json")))
            #expect(runs.count == 6)
            #expect(
                Set(runs.map(\.gridLabel)) == [
                    "algorithm=ssgd wire_dtype=float32", "algorithm=ssgd wire_dtype=bfloat16",
                    "algorithm=bmuf wire_dtype=float32", "algorithm=bmuf wire_dtype=bfloat16",
                    "algorithm=easgd wire_dtype=float32", "algorithm=easgd wire_dtype=bfloat16",
                ])
            for run in runs {
                #expect(run.iterations == 40)
                // EASGD's centre moves only by the workers' elastic pulls: it learns, more slowly in 40
                // rounds (0.76 here against 0.9+ for the others; chance is 0.1).
                let floor = run.gridLabel.contains("easgd") ? 0.6 : 0.8
                #expect((run.heldOutAccuracy ?? 0) > floor, "\(run.gridLabel): \(run.heldOutAccuracy ?? 0)")
                #expect(
                    run.points.last!.heldOutLoss < run.points.first!.heldOutLoss / 2, "\(run.gridLabel) learns")
            }
            #expect(Set(runs.map(\.initialWeightsDigest)).count == 1, "every run starts from the same network")
            let csv = try String(contentsOf: out.appendingPathComponent("runs.csv"), encoding: .utf8)
            #expect(csv.contains("algorithm=bmuf;wire_dtype=bfloat16"))
        }
    }

    @Test(
        "a sweep takes what chimera local --data takes: any worker folder names, a separate test folder; a bad one writes nothing"
    )
    func dataLayout() async throws {
        try await blocking {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent(
                "chimera-sweep-data-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: root) }
            let source = repositoryRoot.appendingPathComponent("deploy/data/breast-cancer")
            let manager = FileManager.default
            try manager.createDirectory(at: root.appendingPathComponent("shards"), withIntermediateDirectories: true)
            try manager.copyItem(
                at: source.appendingPathComponent("worker-1"), to: root.appendingPathComponent("shards/worker1"))
            try manager.copyItem(
                at: source.appendingPathComponent("worker-2"), to: root.appendingPathComponent("shards/alice"))
            try manager.copyItem(at: source.appendingPathComponent("test"), to: root.appendingPathComponent("held-out"))
            let out = root.appendingPathComponent("out")
            let config = root.appendingPathComponent("sweep.yaml")
            try """
            data: {path: \(root.path)/shards, test: \(root.path)/held-out}
            iterations: 20
            staleness: [0]
            workers: [2]
            fit: {batch_size: 16}
            """.write(to: config, atomically: true, encoding: .utf8)
            let result = try runChimera(["sweep", "--config", config.path, "--out", out.path])
            #expect(result.status == 0, "\(result.stderr)")
            let runs = try JSONDecoder().decode(
                [SweepRun].self, from: Data(contentsOf: out.appendingPathComponent("sweep.json")))
            #expect(runs.count == 1 && runs[0].iterations == 20 && runs[0].partitionDigests.count == 2)

            // A test folder that does not exist: an error naming it, and no output folder.
            let badOut = root.appendingPathComponent("bad-out")
            try """
            data: {path: \(root.path)/shards, test: \(root.path)/nowhere}
            staleness: [0]
            workers: [2]
            """.write(to: config, atomically: true, encoding: .utf8)
            let bad = try runChimera(["sweep", "--config", config.path, "--out", badOut.path])
            #expect(bad.status != 0)
            #expect(bad.stderr.contains("nowhere"), "\(bad.stderr)")
            #expect(!bad.stderr.contains("Usage:"), "\(bad.stderr)")
            #expect(!manager.fileExists(atPath: badOut.path))
            // Too few worker folders: the same.
            try """
            data: {path: \(root.path)/shards, test: \(root.path)/held-out}
            staleness: [0]
            workers: [3]
            """.write(to: config, atomically: true, encoding: .utf8)
            let few = try runChimera(["sweep", "--config", config.path, "--out", badOut.path])
            #expect(few.status != 0 && few.stderr.contains("2 worker folders"), "\(few.stderr)")
            #expect(!manager.fileExists(atPath: badOut.path))
        }
    }

    @Test("a sweep over data whose labels are class names scores held-out accuracy by name")
    func namedLabels() async throws {
        try await blocking {
            let data = try NamedLabelsProcessTests.namedData()
            // A test split without one of the classes: its names sort differently from the model's.
            let testFolder = data.appendingPathComponent("test")
            let x = try String(contentsOf: testFolder.appendingPathComponent("X_test.csv"), encoding: .utf8).split(
                separator: "\n")
            let y = try String(contentsOf: testFolder.appendingPathComponent("y_test.csv"), encoding: .utf8).split(
                separator: "\n")
            let kept = y.indices.filter { y[$0] != "beta" }
            try (kept.map { x[$0] }.joined(separator: "\n") + "\n").write(
                to: testFolder.appendingPathComponent("X_test.csv"), atomically: true, encoding: .utf8)
            try (kept.map { y[$0] }.joined(separator: "\n") + "\n").write(
                to: testFolder.appendingPathComponent("y_test.csv"), atomically: true, encoding: .utf8)
            let out = FileManager.default.temporaryDirectory.appendingPathComponent(
                "chimera-sweep-\(UUID().uuidString.prefix(8))")
            let config = out.appendingPathExtension("yaml")
            defer { for url in [data, out, config] { try? FileManager.default.removeItem(at: url) } }
            try """
            name: named
            data: {path: \(data.path)}
            model: softmax
            iterations: 60
            staleness: [0]
            workers: [2]
            """.write(to: config, atomically: true, encoding: .utf8)
            let result = try runChimera(["sweep", "--config", config.path, "--out", out.path])
            #expect(result.status == 0, "\(result.stderr)")
            let runs = try JSONDecoder().decode(
                [SweepRun].self, from: Data(contentsOf: out.appendingPathComponent("sweep.json")))
            let accuracy = try #require(runs.first?.heldOutAccuracy)
            #expect(accuracy >= 0.8, "held-out accuracy by name \(accuracy)")
        }
    }

    @Test("a malformed configuration fails with the field named")
    func malformed() async throws {
        try await blocking {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent(
                "bad-\(UUID().uuidString.prefix(8)).yaml")
            defer { try? FileManager.default.removeItem(at: file) }
            try "staleness: [0, soon]\n".write(to: file, atomically: true, encoding: .utf8)
            let result = try runChimera(["sweep", "--config", file.path, "--out", "/tmp/never-written"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("staleness[1]"))
        }
    }
}
