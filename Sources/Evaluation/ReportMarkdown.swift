import Foundation

/// `report.md`: the report for people. Failed gradient-masking checks come first, because a
/// robust accuracy they cast doubt on should not be read without them.
public enum ReportMarkdown {
    /// The Markdown text of `report` (GitHub-flavoured tables), ending with a newline.
    public static func render(_ report: RobustnessReport) -> String {
        var out: [String] = []
        let m = report.model
        out.append(
            "# Robustness report: \(ReportText.escape(m.arch)) ×\(ReportText.number(m.width)), "
                + "\(ReportText.threat(report.threat))"
        )
        out.append("")
        out.append(contentsOf: verdict(report))
        out.append("")
        out.append(
            "\(ReportText.code(m.path)) (trained by \(ReportText.escape(m.trainedBy))) on \(report.data.samples) "
                + "\(ReportText.escape(report.data.split)) samples of \(ReportText.escape(report.data.name)), seed "
                    + "\(report.data.seed). "
                + "Created \(ReportText.escape(report.created)) by rrmd \(ReportText.escape(report.rrmdVersion)).")
        out.append("")
        out.append(contentsOf: summary(report))
        out.append(contentsOf: checks(report))
        out.append(contentsOf: sweep(report))
        out.append(contentsOf: iterations(report))
        out.append(contentsOf: perClass(report))
        out.append(contentsOf: settings(report))
        out.append(contentsOf: timing(report))
        out.append(contentsOf: model(report))
        while out.last == "" { out.removeLast() }
        return out.joined(separator: "\n") + "\n"
    }

    private static func verdict(_ report: RobustnessReport) -> [String] {
        let failed = report.checks.filter { !$0.passed }
        if report.checks.isEmpty {
            return ["No gradient-masking checks were run, so the robust accuracy below is unverified."]
        }
        if failed.isEmpty {
            return ["All \(report.checks.count) gradient-masking checks passed."]
        }
        var lines = [
            "> **Possible gradient masking:** \(failed.count) of \(report.checks.count) checks failed; "
                + "the robust accuracy below may be overestimated."
        ]
        for check in failed {
            lines.append("> - **\(ReportText.code(check.name))**: \(ReportText.escape(check.detail))")
        }
        return lines
    }

    private static func summary(_ report: RobustnessReport) -> [String] {
        let n = report.data.samples
        var lines = ["## Summary", "", "| Evaluation | Accuracy | Correct |", "|:--|--:|--:|"]
        lines.append("| Clean | \(ReportText.percent(report.clean.accuracy)) | \(report.clean.correct) / \(n) |")
        for attack in report.attacks {
            lines.append(
                "| \(ReportText.attackTitle(attack.name)) | \(ReportText.percent(attack.robustAccuracy)) | "
                    + "\(attack.correct) / \(n) |"
            )
        }
        let worst = report.worstCase
        lines.append(
            "| **Worst case** | **\(ReportText.percent(worst.robustAccuracy))** | **\(worst.correct) / \(n)** |")
        lines.append("")
        return lines
    }

    private static func checks(_ report: RobustnessReport) -> [String] {
        guard !report.checks.isEmpty else { return [] }
        var lines = ["## Checks", ""]
        for check in report.checks {
            let mark = check.passed ? "PASS" : "**FAIL**"
            lines.append("- \(mark) \(ReportText.code(check.name)): \(ReportText.escape(check.detail))")
        }
        lines.append("")
        return lines
    }

    private static func sweep(_ report: RobustnessReport) -> [String] {
        guard let sweep = report.sweep, !sweep.points.isEmpty else { return [] }
        var lines = ["## Accuracy vs epsilon", ""]
        lines.append("![Accuracy against epsilon](\(ReportWriter.sweepChartName))")
        lines.append("")
        lines.append(
            "\(ReportText.attackTitle(sweep.attack)) on \(sweep.samples) samples; epsilon 0 is clean accuracy on the "
                + "same samples."
        )
        lines.append("")
        lines.append(contentsOf: ["| Epsilon | Accuracy |", "|--:|--:|"])
        for point in sweep.points.sorted(by: { $0.epsilon < $1.epsilon }) {
            lines.append(
                "| \(ReportText.epsilon(point.epsilon, like: report.threat)) | \(ReportText.percent(point.accuracy)) |")
        }
        lines.append("")
        return lines
    }

    private static func iterations(_ report: RobustnessReport) -> [String] {
        guard let check = report.iterationsCheck, !check.points.isEmpty else { return [] }
        var lines = ["## Iterations check", ""]
        lines.append(
            "\(ReportText.attackTitle(check.attack)) at \(ReportText.threat(report.threat)) on \(check.samples) "
                + "samples; accuracy should not rise as the attack gets more iterations.")
        lines.append("")
        lines.append(contentsOf: ["| Iterations | Accuracy |", "|--:|--:|"])
        for point in check.points.sorted(by: { $0.iterations < $1.iterations }) {
            lines.append("| \(point.iterations) | \(ReportText.percent(point.accuracy)) |")
        }
        lines.append("")
        return lines
    }

    private static func perClass(_ report: RobustnessReport) -> [String] {
        guard !report.perClass.isEmpty else { return [] }
        var lines = ["## Per class", ""]
        lines.append("![Clean and robust accuracy per class](\(ReportWriter.perClassChartName))")
        lines.append("")
        lines.append(contentsOf: ["| Class | Name | Samples | Clean | Robust (worst case) |", "|--:|:--|--:|--:|--:|"])
        for row in report.perClass {
            let name = ReportText.className(row, in: report).map(ReportText.escape) ?? ""
            lines.append(
                "| \(row.classIndex) | \(name) | \(row.samples) | \(ReportText.percent(row.cleanAccuracy)) | "
                    + "\(ReportText.percent(row.robustAccuracy)) |"
            )
        }
        lines.append("")
        return lines
    }

    private static func settings(_ report: RobustnessReport) -> [String] {
        guard !report.attacks.isEmpty else { return [] }
        var lines = ["## Attack settings", ""]
        lines.append(
            "Threat model: \(ReportText.threat(report.threat)) (\(report.threat.norm.rawValue), epsilon "
                + "\(ReportText.number(report.threat.epsilon)) in input units)."
        )
        lines.append("")
        lines.append(contentsOf: ["| Attack | Settings | Time |", "|:--|:--|--:|"])
        for attack in report.attacks {
            let text = attack.settings.keys.sorted().map { "\($0)=\(attack.settings[$0]!)" }.joined(separator: ", ")
            lines.append(
                "| \(ReportText.attackTitle(attack.name)) | \(text.isEmpty ? "defaults" : ReportText.escape(text)) | "
                    + "\(ReportText.seconds(attack.seconds)) |"
            )
        }
        lines.append("")
        return lines
    }

    private static func timing(_ report: RobustnessReport) -> [String] {
        let t = report.timing
        return [
            "## Timing", "",
            "- Total: \(ReportText.seconds(t.totalSeconds))",
            "- Clean pass: \(ReportText.seconds(t.cleanSeconds))",
            "- Threads: \(t.threads)",
            "",
        ]
    }

    private static func model(_ report: RobustnessReport) -> [String] {
        let m = report.model
        var lines = ["## Model", "", "| Field | Value |", "|:--|:--|"]
        lines.append("| Path | \(ReportText.code(m.path)) |")
        lines.append("| SHA-256 | \(ReportText.code(m.sha256)) |")
        lines.append("| Architecture | \(ReportText.escape(m.arch)) |")
        lines.append("| Width | \(ReportText.number(m.width)) |")
        lines.append("| Parameters | \(ReportText.grouped(m.parameters)) |")
        lines.append("| Dataset | \(ReportText.escape(m.dataset)) |")
        lines.append("| Trained by | \(ReportText.escape(m.trainedBy)) |")
        lines.append("| Claimed threat model | \(m.threatModel.map(ReportText.code) ?? "none given") |")
        lines.append("| Producer | \(m.producer.map(ReportText.escape) ?? "unknown") |")
        lines.append("")
        return lines
    }
}

/// Number and text formatting shared by the checks and the writers, so that a value reads the
/// same in `report.md`, in a check's detail and on a chart. Formats are locale-independent.
enum ReportText {
    /// `fraction` as a percentage with two decimals, e.g. `48.25%`.
    static func percent(_ fraction: Double) -> String {
        String(format: "%.2f%%", fraction * 100)
    }

    /// A difference of fractions in percentage points, e.g. `0.50 points`.
    static func points(_ fraction: Double) -> String {
        String(format: "%.2f points", fraction * 100)
    }

    /// A plain number with up to six significant digits: `0.0313725`, `8`, `0.25`.
    static func number(_ value: Double) -> String {
        String(format: "%g", value)
    }

    /// A duration, e.g. `12.3 s`.
    static func seconds(_ value: Double) -> String {
        String(format: "%.1f s", value)
    }

    /// An integer with thousands separated by commas, whatever the locale.
    static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// The threat as people write it: `L∞ ε = 8/255`.
    static func threat(_ threat: RobustnessReport.Threat) -> String {
        let norm = threat.norm == .linf ? "L∞" : "L2"
        let text = threat.epsilonText.isEmpty ? number(threat.epsilon) : threat.epsilonText
        return "\(norm) ε = \(text)"
    }

    /// An epsilon of a sweep, with its value in 255ths when the user thinks in pixel levels
    /// (their epsilon text says `/255`) and the value is a round number of them.
    static func epsilon(_ value: Double, like threat: RobustnessReport.Threat) -> String {
        guard let levels = levels255(value, like: threat), value != 0 else { return number(value) }
        return "\(number(value)) (\(number(levels))/255)"
    }

    /// `value` in 255ths if the threat is written in 255ths and `value` is a whole or
    /// three-decimal number of them; nil otherwise.
    static func levels255(_ value: Double, like threat: RobustnessReport.Threat) -> Double? {
        guard threat.epsilonText.contains("/255") else { return nil }
        let levels = value * 255
        let rounded = (levels * 1000).rounded() / 1000
        return abs(levels - rounded) < 1e-6 ? rounded : nil
    }

    /// Attack name for headings and tables: `apgd-ce` becomes `APGD-CE`.
    static func attackTitle(_ name: String) -> String {
        escape(name.uppercased())
    }

    /// The name of a per-class row: its own, else the dataset's, else nil.
    static func className(_ row: RobustnessReport.ClassResult, in report: RobustnessReport) -> String? {
        if let name = row.name { return name }
        if let names = report.data.classNames, names.indices.contains(row.classIndex) { return names[row.classIndex] }
        return nil
    }

    /// `text` with Markdown's active characters escaped and line breaks flattened, so that
    /// names and details from elsewhere cannot break a table or start a heading.
    static func escape(_ text: String) -> String {
        var out = ""
        for ch in text {
            switch ch {
            case "\\", "`", "*", "_", "[", "]", "<", ">", "|", "#":
                out.append("\\")
                out.append(ch)
            case "\n", "\r":
                out.append(" ")
            default:
                out.append(ch)
            }
        }
        return out
    }

    /// `text` as a code span whose fence is longer than any backtick run inside it; pipes stay
    /// escaped because GitHub splits table cells on them even inside code.
    static func code(_ text: String) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
            .replacingOccurrences(of: "|", with: "\\|")
        var longest = 0
        var run = 0
        for ch in flat {
            run = ch == "`" ? run + 1 : 0
            longest = max(longest, run)
        }
        let fence = String(repeating: "`", count: longest + 1)
        let pad = flat.hasPrefix("`") || flat.hasSuffix("`") ? " " : ""
        return fence + pad + flat + pad + fence
    }
}
