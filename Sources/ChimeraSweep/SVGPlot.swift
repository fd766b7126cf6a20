import Foundation

/// Line charts as standalone SVG (no dependencies): axes with ticks, one coloured line per series,
/// a legend, and an optional dashed horizontal target line.
enum SVGPlot {
    static let palette = [
        "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
    ]

    static func lines(
        title: String, xLabel: String, yLabel: String, series: [(String, [(Double, Double)])], target: Double? = nil,
        width: Double = 640, height: Double = 400
    ) -> String {
        let left = 70.0, right = 150.0, top = 40.0, bottom = 50.0
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        let points = series.flatMap(\.1).filter { $0.0.isFinite && $0.1.isFinite }
        let xMax = max(points.map(\.0).max() ?? 1, 1e-9)
        let xMin = min(points.map(\.0).min() ?? 0, 0)
        var yMin = points.map(\.1).min() ?? 0
        var yMax = points.map(\.1).max() ?? 1
        if let target {
            yMin = min(yMin, target)
            yMax = max(yMax, target)
        }
        if yMax - yMin < 1e-12 { yMax = yMin + 1 }
        let pad = (yMax - yMin) * 0.05
        yMin -= pad
        yMax += pad
        func sx(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * plotWidth }
        func sy(_ y: Double) -> Double { top + (1 - (y - yMin) / (yMax - yMin)) * plotHeight }
        func n(_ v: Double) -> String { String(format: "%.1f", v) }

        var svg =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        svg += "<text x=\"\(n(left))\" y=\"22\" font-size=\"14\">\(SweepReport.escape(title))</text>\n"
        svg +=
            "<rect x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(plotWidth))\" height=\"\(n(plotHeight))\" fill=\"none\" stroke=\"#444\"/>\n"
        for tick in ticks(xMin, xMax) {
            svg +=
                "<line x1=\"\(n(sx(tick)))\" y1=\"\(n(top + plotHeight))\" x2=\"\(n(sx(tick)))\" y2=\"\(n(top + plotHeight + 5))\" stroke=\"#444\"/>"
            svg +=
                "<text x=\"\(n(sx(tick)))\" y=\"\(n(top + plotHeight + 18))\" text-anchor=\"middle\">\(label(tick))</text>\n"
        }
        for tick in ticks(yMin, yMax) {
            svg +=
                "<line x1=\"\(n(left - 5))\" y1=\"\(n(sy(tick)))\" x2=\"\(n(left + plotWidth))\" y2=\"\(n(sy(tick)))\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(n(left - 8))\" y=\"\(n(sy(tick) + 4))\" text-anchor=\"end\">\(label(tick))</text>\n"
        }
        svg +=
            "<text x=\"\(n(left + plotWidth / 2))\" y=\"\(n(height - 12))\" text-anchor=\"middle\">\(SweepReport.escape(xLabel))</text>\n"
        svg +=
            "<text transform=\"translate(16 \(n(top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">\(SweepReport.escape(yLabel))</text>\n"
        if let target {
            svg +=
                "<line x1=\"\(n(left))\" y1=\"\(n(sy(target)))\" x2=\"\(n(left + plotWidth))\" y2=\"\(n(sy(target)))\" stroke=\"#888\" stroke-dasharray=\"5,4\"/>"
            svg +=
                "<text x=\"\(n(left + plotWidth - 4))\" y=\"\(n(sy(target) - 4))\" text-anchor=\"end\" fill=\"#666\">target</text>\n"
        }
        for (index, (name, values)) in series.enumerated() {
            let color = palette[index % palette.count]
            let path = values.filter { $0.0.isFinite && $0.1.isFinite }.map { "\(n(sx($0.0))),\(n(sy($0.1)))" }.joined(
                separator: " ")
            svg += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.8\"/>\n"
            let y = top + 14 + Double(index) * 18
            svg +=
                "<line x1=\"\(n(left + plotWidth + 12))\" y1=\"\(n(y - 4))\" x2=\"\(n(left + plotWidth + 36))\" y2=\"\(n(y - 4))\" stroke=\"\(color)\" stroke-width=\"2.5\"/>"
            svg += "<text x=\"\(n(left + plotWidth + 42))\" y=\"\(n(y))\">\(SweepReport.escape(name))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// About five round-numbered ticks covering [low, high].
    static func ticks(_ low: Double, _ high: Double) -> [Double] {
        let span = high - low
        guard span > 0, span.isFinite else { return [low] }
        let raw = span / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var values: [Double] = []
        var value = ceil(low / step) * step
        while value <= high + step * 1e-9 {
            values.append(value)
            value += step
        }
        return values
    }

    static func label(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e6 { return String(Int(value)) }
        return String(format: abs(value) < 0.01 ? "%.2e" : "%.3g", value)
    }
}
