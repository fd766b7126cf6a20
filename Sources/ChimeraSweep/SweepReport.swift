import ChimeraML
public import Foundation

/// Writes a sweep's outputs: sweep.json, runs.csv, iterations.csv, SVG plots and report.html.
public enum SweepReport {
    /// Writes every file into `folder` and returns the summary table (Markdown).
    @discardableResult
    public static func write(_ runs: [SweepRun], configuration: SweepConfiguration, to folder: URL) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(runs).write(to: folder.appendingPathComponent("sweep.json"), options: .atomic)
        try runsCSV(runs).write(to: folder.appendingPathComponent("runs.csv"), atomically: true, encoding: .utf8)
        try iterationsCSV(runs).write(
            to: folder.appendingPathComponent("iterations.csv"), atomically: true, encoding: .utf8)

        var figures: [(title: String, files: [String])] = []
        for (key, group) in groups(runs) {
            let slug = key.slug
            let byTime = group.map { ($0.stalenessLabel, $0.points.map { ($0.seconds, $0.heldOutLoss) }) }
            let byIteration = group.map {
                ($0.stalenessLabel, $0.points.map { (Double($0.iteration), $0.heldOutLoss) })
            }
            let timeFile = "loss_vs_time_\(slug).svg"
            let iterationFile = "loss_vs_iterations_\(slug).svg"
            try SVGPlot.lines(
                title: "held-out loss vs wall time — \(key.title)", xLabel: "seconds", yLabel: "held-out loss",
                series: byTime,
                target: configuration.targetLoss
            ).write(to: folder.appendingPathComponent(timeFile), atomically: true, encoding: .utf8)
            try SVGPlot.lines(
                title: "held-out loss vs iterations — \(key.title)", xLabel: "iteration", yLabel: "held-out loss",
                series: byIteration, target: configuration.targetLoss
            ).write(to: folder.appendingPathComponent(iterationFile), atomically: true, encoding: .utf8)
            figures.append((key.title, [timeFile, iterationFile]))
        }
        let table = summaryTable(runs, target: configuration.targetLoss)
        try html(configuration: configuration, table: table, figures: figures).write(
            to: folder.appendingPathComponent("report.html"), atomically: true, encoding: .utf8)
        return table
    }

    struct GroupKey: Hashable, Comparable {
        let stragglers: String
        let workers: Int
        let learningRate: Double
        let repeatIndex: Int
        /// The `grid:` settings, "algorithm=ma wire_dtype=bfloat16" (empty without a grid block).
        let settings: String
        var title: String {
            "stragglers: \(stragglers), N=\(workers), lr=\(learningRate)\(settings.isEmpty ? "" : ", \(settings)"), repeat \(repeatIndex + 1)"
        }
        var slug: String {
            "\(stragglers)_N\(workers)_lr\(learningRate)_\(settings)_r\(repeatIndex + 1)".map {
                $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "-"
            }
            .reduce(into: "") { $0.append($1) }
        }
        static func < (a: GroupKey, b: GroupKey) -> Bool {
            (a.repeatIndex, a.stragglers, a.workers, a.learningRate, a.settings) < (
                b.repeatIndex, b.stragglers, b.workers, b.learningRate, b.settings
            )
        }
    }

    /// Runs that differ only in the staleness bound: one plot each, one line per bound.
    static func groups(_ runs: [SweepRun]) -> [(GroupKey, [SweepRun])] {
        Dictionary(grouping: runs) {
            GroupKey(
                stragglers: $0.stragglers, workers: $0.workers, learningRate: $0.learningRate,
                repeatIndex: $0.repeatIndex, settings: $0.gridLabel)
        }.sorted { $0.key < $1.key }
    }

    public static func summaryTable(_ runs: [SweepRun], target: Double?) -> String {
        func f(_ value: Double?, _ digits: Int) -> String { value.map { String(format: "%.\(digits)f", $0) } ?? "–" }
        var out =
            "| stragglers | N | lr | grid | s | time to target \(target.map { "(\($0))" } ?? "") s | final held-out loss | accuracy | iterations/s | mean staleness | waiting | wall s |\n"
        out += "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
        for run in runs {
            out +=
                "| \(run.stragglers) | \(run.workers) | \(run.learningRate) | \(run.gridLabel.isEmpty ? "–" : run.gridLabel) | \(run.stalenessLabel) | \(f(run.secondsToTarget, 2)) | \(f(run.finalHeldOutLoss, 4)) | \(f(run.heldOutAccuracy, 4)) | \(f(run.iterationsPerSecond, 1)) | \(f(run.meanObservedStaleness, 2)) | \(f(run.waitingFraction * 100, 0)) % | \(f(run.wallSeconds, 2)) |\n"
        }
        return out
    }

    static func runsCSV(_ runs: [SweepRun]) -> String {
        var out =
            "id,stragglers,straggler_description,workers,learning_rate,grid,staleness,repeat,wall_seconds,iterations,iterations_per_second,final_held_out_loss,held_out_accuracy,seconds_to_target,mean_observed_staleness,max_clock_spread,waiting_fraction,initial_weights_digest,partition_digests\n"
        for r in runs {
            let fields: [String] = [
                r.id, r.stragglers, "\"\(r.stragglerDescription)\"", "\(r.workers)", "\(r.learningRate)",
                r.gridLabel.replacing(" ", with: ";"),
                r.staleness.map(String.init) ?? "unbounded",
                "\(r.repeatIndex + 1)", "\(r.wallSeconds)", "\(r.iterations)", "\(r.iterationsPerSecond)",
                "\(r.finalHeldOutLoss)",
                r.heldOutAccuracy.map { "\($0)" } ?? "", r.secondsToTarget.map { "\($0)" } ?? "",
                "\(r.meanObservedStaleness)",
                "\(r.maxClockSpread)", "\(r.waitingFraction)", r.initialWeightsDigest,
                r.partitionDigests.joined(separator: ";"),
            ]
            out += fields.joined(separator: ",") + "\n"
        }
        return out
    }

    static func iterationsCSV(_ runs: [SweepRun]) -> String {
        var out = "id,iteration,seconds,held_out_loss,train_loss,barrier_wait_seconds,clocks\n"
        for r in runs {
            for p in r.points {
                out +=
                    "\(r.id),\(p.iteration),\(p.seconds),\(p.heldOutLoss),\(p.trainLoss),\(p.barrierWaitSeconds),\(p.clocks.map(String.init).joined(separator: ";"))\n"
            }
        }
        return out
    }

    static func html(configuration: SweepConfiguration, table: String, figures: [(title: String, files: [String])])
        -> String
    {
        var rows = ""
        for line in table.split(separator: "\n").dropFirst(2) {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
            rows +=
                "<tr>" + cells.map { "<td>\(escape($0.trimmingCharacters(in: .whitespaces)))</td>" }.joined()
                + "</tr>\n"
        }
        let header =
            table.split(separator: "\n").first.map { line in
                line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast().map {
                    "<th>\(escape($0.trimmingCharacters(in: .whitespaces)))</th>"
                }.joined()
            } ?? ""
        var body = "<h1>Chimera sweep: \(escape(configuration.name))</h1>\n"
        body +=
            "<p>\(configuration.iterations) iterations of \(configuration.model.rawValue); every run starts from the same initial weights on the same partitions.</p>\n"
        body += "<table>\n<tr>\(header)</tr>\n\(rows)</table>\n"
        for figure in figures {
            body += "<h2>\(escape(figure.title))</h2>\n<div class=\"plots\">"
            body += figure.files.map { "<img src=\"\($0)\" alt=\"\(escape(figure.title))\">" }.joined()
            body += "</div>\n"
        }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Chimera sweep: \(escape(configuration.name))</title>
            <style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:14px}
            td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}
            .plots img{width:48%;min-width:420px;margin:4px}</style></head>
            <body>
            \(body)</body></html>

            """
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
