import Foundation

/// Self-contained SVG charts of a report: no scripts, no external fonts or styles, so a browser
/// (or a Markdown viewer showing `report.md`) renders them from the file alone.
///
/// Every chart has a fixed 720 × 440 view box; accuracies are fractions drawn on a 0–100 % axis.
public enum SVGChart {
    /// Width of every chart in SVG user units (and pixels).
    public static let width = 720.0
    /// Height of every chart in SVG user units (and pixels).
    public static let height = 440.0

    /// One (x, accuracy) point of a line chart.
    public struct Point: Equatable, Sendable {
        /// Position on the x axis.
        public var x: Double
        /// Accuracy as a fraction in [0, 1].
        public var y: Double

        /// Makes a point.
        public init(x: Double, y: Double) {
            self.x = x
            self.y = y
        }
    }

    /// One named line of a line chart, drawn as a polyline with a marker per point.
    public struct Series: Equatable, Sendable {
        /// Legend text.
        public var name: String
        /// Points in any order; they are joined in order of x.
        public var points: [Point]

        /// Makes a series.
        public init(name: String, points: [Point]) {
            self.name = name
            self.points = points
        }
    }

    /// A labelled position on the x axis.
    public struct Tick: Equatable, Sendable {
        /// Position on the x axis.
        public var value: Double
        /// Text under the axis.
        public var label: String

        /// Makes a tick.
        public init(value: Double, label: String) {
            self.value = value
            self.label = label
        }
    }

    /// A dashed reference line across the plot, e.g. the evaluated epsilon or chance accuracy.
    public struct Guide: Equatable, Sendable {
        /// Which axis the value is on: a guide at an x value is vertical, at a y value horizontal.
        public enum Axis: Equatable, Sendable {
            /// Vertical line at an x value.
            case x
            /// Horizontal line at an accuracy.
            case y
        }
        /// The axis of `value`.
        public var axis: Axis
        /// Where the line is.
        public var value: Double
        /// Text beside the line.
        public var label: String

        /// Makes a guide.
        public init(axis: Axis, value: Double, label: String) {
            self.axis = axis
            self.value = value
            self.label = label
        }
    }

    /// One labelled group of bars, one bar per series, values as fractions in [0, 1].
    public struct BarGroup: Equatable, Sendable {
        /// Text under the group.
        public var label: String
        /// One value per series, in the order of the series names.
        public var values: [Double]

        /// Makes a bar group.
        public init(label: String, values: [Double]) {
            self.label = label
            self.values = values
        }
    }

    /// `accuracy_vs_epsilon.svg`: the sweep as a line, with the evaluated epsilon and chance
    /// accuracy as guides; nil when the report has no sweep points.
    public static func accuracyVsEpsilon(_ report: RobustnessReport) -> String? {
        guard let sweep = report.sweep, !sweep.points.isEmpty else { return nil }
        let series = Series(
            name: "\(sweep.attack.uppercased()) (\(sweep.samples) samples)",
            points: sweep.points.map { Point(x: $0.epsilon, y: $0.accuracy) })
        let threat = report.threat
        let epsilonText = threat.epsilonText.isEmpty ? ReportText.number(threat.epsilon) : threat.epsilonText
        var guides = [Guide(axis: .x, value: threat.epsilon, label: "ε = \(epsilonText)")]
        if report.data.numClasses > 1 {
            guides.append(Guide(axis: .y, value: 1 / Double(report.data.numClasses), label: "chance"))
        }
        let maxEpsilon = max(sweep.points.map(\.epsilon).filter(\.isFinite).max() ?? 0, report.threat.epsilon)
        let norm = report.threat.norm == .linf ? "L∞" : "L2"
        return lineChart(
            title: "\(report.model.arch) ×\(ReportText.number(report.model.width)): accuracy against \(norm) epsilon",
            xTitle: "epsilon (\(norm))", yTitle: "accuracy",
            series: [series], xTicks: epsilonTicks(upTo: maxEpsilon, threat: report.threat), guides: guides)
    }

    /// `per_class.svg`: clean and worst-case robust accuracy of each class as grouped bars.
    public static func perClass(_ report: RobustnessReport) -> String {
        let groups = report.perClass.map { row in
            BarGroup(
                label: ReportText.className(row, in: report) ?? String(row.classIndex),
                values: [row.cleanAccuracy, row.robustAccuracy])
        }
        return groupedBars(
            title:
                "\(report.model.arch) ×\(ReportText.number(report.model.width)): accuracy per class, "
                    + "\(ReportText.threat(report.threat))",
            yTitle: "accuracy", seriesNames: ["clean", "robust (worst case)"], groups: groups)
    }

    /// A line chart of accuracies: one polyline and its markers per series, a legend, axis
    /// titles and a title. Ticks default to round numbers covering the data.
    public static func lineChart(
        title: String, xTitle: String, yTitle: String, series: [Series],
        xTicks: [Tick]? = nil, guides: [Guide] = []
    ) -> String {
        var svg = SVGDocument(title: title)
        let plot = Frame(left: 70, top: 70, right: width - 24, bottom: height - 64)
        let xs =
            series.flatMap { $0.points.map(\.x) }.filter(\.isFinite)
            + guides.filter { $0.axis == .x }.map(\.value).filter(\.isFinite)
        let ticks =
            xTicks
            ?? niceTicks(low: xs.min() ?? 0, high: xs.max() ?? 1).map { Tick(value: $0, label: ReportText.number($0)) }
        let allX = xs + ticks.map(\.value)
        var lo = allX.min() ?? 0
        var hi = allX.max() ?? 1
        if hi <= lo { hi = lo + 1 }  // a single x value still needs a scale
        if lo > 0 && lo < hi / 2 { lo = 0 }
        let xPos = { (x: Double) in plot.left + (x - lo) / (hi - lo) * plot.width }

        drawAccuracyAxis(&svg, plot: plot, yTitle: yTitle)
        for tick in ticks where tick.value.isFinite {
            let x = xPos(tick.value)
            svg.add("line", ["x1": f(x), "y1": f(plot.bottom), "x2": f(x), "y2": f(plot.bottom + 5), "stroke": "#333"])
            svg.add("text", ["x": f(x), "y": f(plot.bottom + 19), "text-anchor": "middle"], text: tick.label)
        }
        svg.add(
            "text", ["x": f(plot.left + plot.width / 2), "y": f(height - 18), "text-anchor": "middle"], text: xTitle)

        for guide in guides where guide.value.isFinite {
            if guide.axis == .x {
                let x = xPos(guide.value)
                svg.add(
                    "line",
                    [
                        "x1": f(x), "y1": f(plot.top), "x2": f(x), "y2": f(plot.bottom), "stroke": "#777",
                        "stroke-dasharray": "5 4", "class": "guide",
                    ])
                svg.add("text", ["x": f(x + 4), "y": f(plot.top + 12), "fill": "#555"], text: guide.label)
            } else {
                let y = plot.y(guide.value)
                svg.add(
                    "line",
                    [
                        "x1": f(plot.left), "y1": f(y), "x2": f(plot.right), "y2": f(y), "stroke": "#777",
                        "stroke-dasharray": "5 4", "class": "guide",
                    ])
                svg.add("text", ["x": f(plot.left + 4), "y": f(y - 4), "fill": "#555"], text: guide.label)
            }
        }

        for (i, line) in series.enumerated() {
            let color = palette[i % palette.count]
            let points = line.points.filter { $0.x.isFinite && $0.y.isFinite }.sorted { $0.x < $1.x }
            let coordinates = points.map { "\(f(xPos($0.x))),\(f(plot.y($0.y)))" }.joined(separator: " ")
            svg.add(
                "polyline",
                [
                    "points": coordinates, "fill": "none", "stroke": color, "stroke-width": "2",
                    "class": "series", "data-series": line.name,
                ])
            for p in points {
                svg.open(
                    "circle",
                    ["cx": f(xPos(p.x)), "cy": f(plot.y(p.y)), "r": "3.5", "fill": color, "data-series": line.name])
                svg.add("title", [:], text: "\(line.name): \(ReportText.number(p.x)), \(ReportText.percent(p.y))")
                svg.close("circle")
            }
        }
        drawLegend(&svg, names: series.map(\.name), right: plot.right, top: plot.top)
        return svg.finish()
    }

    /// A grouped bar chart of accuracies: one group per label, one coloured bar per series.
    public static func groupedBars(title: String, yTitle: String, seriesNames: [String], groups: [BarGroup]) -> String {
        var svg = SVGDocument(title: title)
        // Many or long labels are turned to fit under narrow groups, which needs more room below.
        let longest = groups.map(\.label.count).max() ?? 0
        let rotate = groups.count > 12 || Double(longest) * 7 > (width - 100) / Double(max(groups.count, 1))
        let plot = Frame(left: 70, top: 70, right: width - 24, bottom: height - (rotate ? 110 : 64))
        drawAccuracyAxis(&svg, plot: plot, yTitle: yTitle)
        guard !groups.isEmpty else {
            svg.add(
                "text",
                [
                    "x": f(plot.left + plot.width / 2), "y": f(plot.top + plot.height / 2), "text-anchor": "middle",
                    "fill": "#555",
                ],
                text: "no per-class results")
            return svg.finish()
        }
        let groupWidth = plot.width / Double(groups.count)
        let barWidth = groupWidth * 0.8 / Double(max(seriesNames.count, 1))
        // Past ~40 groups labels would overlap even when turned, so only every k-th is shown.
        let labelEvery = max(1, Int((Double(groups.count) / 40).rounded(.up)))
        for (g, group) in groups.enumerated() {
            let left = plot.left + Double(g) * groupWidth + groupWidth * 0.1
            for (s, value) in group.values.enumerated() where s < seriesNames.count && value.isFinite {
                let top = plot.y(value)
                svg.open(
                    "rect",
                    [
                        "x": f(left + Double(s) * barWidth), "y": f(top), "width": f(barWidth),
                        "height": f(plot.bottom - top),
                        "fill": palette[s % palette.count], "data-series": seriesNames[s],
                    ])
                svg.add("title", [:], text: "\(group.label), \(seriesNames[s]): \(ReportText.percent(value))")
                svg.close("rect")
            }
            guard g % labelEvery == 0 else { continue }
            let x = plot.left + (Double(g) + 0.5) * groupWidth
            let y = plot.bottom + 16
            if rotate {
                svg.add(
                    "text", ["x": f(x), "y": f(y), "text-anchor": "end", "transform": "rotate(-45 \(f(x)) \(f(y)))"],
                    text: String(group.label.prefix(18)))
            } else {
                svg.add("text", ["x": f(x), "y": f(y), "text-anchor": "middle"], text: group.label)
            }
        }
        drawLegend(&svg, names: seriesNames, right: plot.right, top: plot.top)
        return svg.finish()
    }

    // MARK: - Parts

    /// Distinct colours that stay apart for common colour-vision deficiencies.
    static let palette = ["#2f6db5", "#d9612b", "#3a9a4b", "#8b4fb3", "#b8860b", "#1a9aa0"]

    /// The plot area inside the margins; y maps an accuracy to a vertical position.
    struct Frame {
        var left, top, right, bottom: Double
        var width: Double { right - left }
        var height: Double { bottom - top }
        func y(_ accuracy: Double) -> Double { bottom - min(max(accuracy, 0), 1) * height }
    }

    private static func drawAccuracyAxis(_ svg: inout SVGDocument, plot: Frame, yTitle: String) {
        for step in 0...5 {
            let value = Double(step) / 5
            let y = plot.y(value)
            svg.add(
                "line",
                [
                    "x1": f(plot.left), "y1": f(y), "x2": f(plot.right), "y2": f(y),
                    "stroke": step == 0 ? "#333" : "#e3e3e3",
                ])
            svg.add("text", ["x": f(plot.left - 8), "y": f(y + 4), "text-anchor": "end"], text: "\(step * 20)%")
        }
        svg.add(
            "line", ["x1": f(plot.left), "y1": f(plot.top), "x2": f(plot.left), "y2": f(plot.bottom), "stroke": "#333"])
        let cx = 20.0
        let cy = plot.top + plot.height / 2
        svg.add(
            "text", ["x": f(cx), "y": f(cy), "text-anchor": "middle", "transform": "rotate(-90 \(f(cx)) \(f(cy)))"],
            text: yTitle)
    }

    /// A one-row legend between the title and the plot, right-aligned, so it never hides data.
    private static func drawLegend(_ svg: inout SVGDocument, names: [String], right: Double, top: Double) {
        guard !names.isEmpty else { return }
        // Text width is estimated (no font metrics without a renderer): ~6.6 units a character at 12 px.
        let widths = names.map { 26 + Double($0.count) * 6.6 + 16 }
        var x = max(8, right - widths.reduce(0, +))
        let y = top - 12
        for (i, name) in names.enumerated() {
            svg.add(
                "line",
                [
                    "x1": f(x), "y1": f(y - 4), "x2": f(x + 18), "y2": f(y - 4),
                    "stroke": palette[i % palette.count], "stroke-width": "4",
                ])
            svg.add("text", ["x": f(x + 24), "y": f(y)], text: name)
            x += widths[i]
        }
    }

    /// Epsilon ticks in 255ths when the user wrote epsilon that way, else round decimals.
    static func epsilonTicks(upTo maxEpsilon: Double, threat: RobustnessReport.Threat) -> [Tick] {
        let top = maxEpsilon.isFinite && maxEpsilon > 0 ? maxEpsilon : 1
        if threat.epsilonText.contains("/255") {
            return niceTicks(low: 0, high: top * 255).map {
                Tick(value: $0 / 255, label: $0 == 0 ? "0" : "\(ReportText.number($0))/255")
            }
        }
        return niceTicks(low: 0, high: top).map { Tick(value: $0, label: ReportText.number($0)) }
    }

    /// About six ticks at 1, 2 or 5 times a power of ten, covering [low, high].
    static func niceTicks(low: Double, high: Double) -> [Double] {
        guard low.isFinite, high.isFinite, high > low else { return [low.isFinite ? low : 0] }
        let rough = (high - low) / 5
        let power = pow(10, (log10(rough)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= rough } ?? 10 * power
        let first = (low / step).rounded(.down)
        let last = (high / step).rounded(.up)
        // Multiplying integers by the step, rather than adding steps, keeps 0.3 from being 0.30000000000000004.
        return stride(from: first, through: last, by: 1).map { ($0 * step * 1e9).rounded() / 1e9 }
    }

    /// A coordinate with one decimal: enough for a 720-pixel chart, and short.
    static func f(_ value: Double) -> String {
        String(format: "%.1f", value)
    }
}

/// An SVG document assembled line by line, escaping all text and attribute values.
struct SVGDocument {
    private var lines: [String]
    private var depth = 1

    init(title: String) {
        let w = String(Int(SVGChart.width))
        let h = String(Int(SVGChart.height))
        lines = [
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" "
                + "viewBox=\"0 0 \(w) \(h)\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\">",
        ]
        add("title", [:], text: title)
        add("rect", ["x": "0", "y": "0", "width": w, "height": h, "fill": "white"])
        add(
            "text",
            [
                "x": SVGChart.f(SVGChart.width / 2), "y": "28", "text-anchor": "middle", "font-size": "16",
                "font-weight": "bold",
            ], text: title)
    }

    /// A complete element, empty or holding `text`.
    mutating func add(_ name: String, _ attributes: [String: String], text: String? = nil) {
        let start = "<\(name)\(Self.attributes(attributes))"
        if let text {
            lines.append(indent + start + ">" + Self.escape(text) + "</\(name)>")
        } else {
            lines.append(indent + start + "/>")
        }
    }

    /// The start tag of an element whose children follow.
    mutating func open(_ name: String, _ attributes: [String: String]) {
        lines.append(indent + "<\(name)\(Self.attributes(attributes))>")
        depth += 1
    }

    /// The end tag of the element last opened.
    mutating func close(_ name: String) {
        depth -= 1
        lines.append(indent + "</\(name)>")
    }

    /// The whole document, ending with a newline.
    func finish() -> String {
        (lines + ["</svg>"]).joined(separator: "\n") + "\n"
    }

    private var indent: String { String(repeating: "  ", count: depth) }

    /// Attributes in name order, so that the same chart always gives the same bytes.
    private static func attributes(_ attributes: [String: String]) -> String {
        attributes.keys.sorted().map { " \($0)=\"\(escape(attributes[$0]!))\"" }.joined()
    }

    /// `text` safe inside XML text and double- or single-quoted attributes. Control characters
    /// that XML 1.0 forbids become spaces, so that no input can make the file unparsable.
    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out += " "
            default:
                if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF {
                    out += " "
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}
