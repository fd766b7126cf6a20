import ArgumentParser
import ChimeraSweep
import Foundation

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "SSP tuning runs: a grid over staleness bounds, workers, stragglers and learning rates; tables and plots.",
        discussion:
            "Each run starts a local master and workers on 127.0.0.1 (unless `master:` points at a running one), "
            + "trains from the same initial weights on the same partitions, and records every iteration. Outputs: "
            + "sweep.json, runs.csv, iterations.csv, SVG plots and report.html in --out.")

    @Option(help: "The sweep's YAML configuration (see deploy/sweeps/).") var config: String
    @Option(help: "Output folder.") var out = "runs/sweep"

    func run() throws {
        guard let text = try? String(contentsOfFile: config, encoding: .utf8) else {
            throw CommandError("cannot read \(config)")
        }
        let configuration: SweepConfiguration
        do {
            configuration = try SweepConfiguration.parse(yaml: text)
        } catch {
            throw CommandError(error.description)
        }
        let folder = URL(fileURLWithPath: out)
        let runner = SweepRunner(
            configuration: configuration, output: folder,
            log: {
                print("sweep: \($0)"); fflush(nil)
            })
        let runs = try runner.run()
        let table = try SweepReport.write(runs, configuration: configuration, to: folder)
        print("")
        print(table)
        print("wrote \(folder.path)/report.html, sweep.json, runs.csv, iterations.csv and the plots")
    }
}
