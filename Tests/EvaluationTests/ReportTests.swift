import Evaluation
import Foundation
import XCTest

#if canImport(FoundationXML)
import FoundationXML  // XMLParser lives here on Linux
#endif

/// A report of a made-up CIFAR-10 model with every optional part filled and all checks passing.
func sampleReport() -> RobustnessReport {
    let names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    // Built in parts: one literal this size is too much for the type checker.
    let model = RobustnessReport.Model(
        path: "/srv/rrmd/done/job-1/students/resnet20.safetensors.zst",
        sha256: String(repeating: "ab", count: 32), arch: "resnet20", width: 1,
        dataset: "cifar10", parameters: 272_474, trainedBy: "rrm",
        threatModel: "linf:8/255", producer: "rrmd 0.1.0")
    let attacks: [RobustnessReport.Attack] = [
        .init(
            name: "apgd-ce", settings: ["iterations": "50", "restarts": "10"], robustAccuracy: 0.48, correct: 384,
            seconds: 120.5),
        .init(
            name: "apgd-t", settings: ["iterations": "50", "target_classes": "9"], robustAccuracy: 0.47625,
            correct: 381, seconds: 310.25),
        .init(
            name: "pgd", settings: ["iterations": "20", "step": "2/255"], robustAccuracy: 0.5, correct: 400, seconds: 40
        ),
        .init(name: "fgsm", robustAccuracy: 0.5575, correct: 446, seconds: 2),
    ]
    let sweepPoints: [RobustnessReport.SweepPoint] = [
        .init(epsilon: 0, accuracy: 0.82),
        .init(epsilon: 4.0 / 255, accuracy: 0.66),
        .init(epsilon: 8.0 / 255, accuracy: 0.485),
        .init(epsilon: 16.0 / 255, accuracy: 0.2),
        .init(epsilon: 64.0 / 255, accuracy: 0.0),
    ]
    let iterationPoints: [RobustnessReport.IterationsPoint] = [
        .init(iterations: 10, accuracy: 0.5),
        .init(iterations: 50, accuracy: 0.485),
        .init(iterations: 100, accuracy: 0.485),
    ]
    var perClass: [RobustnessReport.ClassResult] = []
    for c in 0..<10 {
        let clean: Double = 0.7 + Double(c) * 0.02
        let robust: Double = 0.4 + Double(c) * 0.01
        perClass.append(.init(classIndex: c, name: names[c], samples: 80, cleanAccuracy: clean, robustAccuracy: robust))
    }
    var report = RobustnessReport(
        model: model,
        data: .init(name: "cifar10", split: "test", samples: 800, numClasses: 10, classNames: names, seed: 42),
        threat: .init(norm: .linf, epsilon: 8.0 / 255, epsilonText: "8/255"),
        clean: .init(accuracy: 0.8125, correct: 650),
        attacks: attacks,
        worstCase: .init(robustAccuracy: 0.475, correct: 380),
        sweep: .init(attack: "apgd-ce", samples: 200, points: sweepPoints),
        iterationsCheck: .init(attack: "apgd-ce", samples: 200, points: iterationPoints),
        perClass: perClass,
        timing: .init(totalSeconds: 480.75, cleanSeconds: 1.5, threads: 2),
        created: "2025-01-31T12:00:00Z", rrmdVersion: "0.1.0")
    report.checks = MaskingChecks.run(report)
    return report
}

func check(_ name: String, _ report: RobustnessReport) -> RobustnessReport.Check {
    let found = MaskingChecks.run(report).first { $0.name == name }
    XCTAssertNotNil(found, "no check named \(name)")
    return found ?? .init(name: name, passed: false, detail: "missing")
}

final class ReportJSONTests: XCTestCase {
    func testRoundTrip() throws {
        let report = sampleReport()
        let decoded = try ReportJSON.decode(ReportJSON.encode(report))
        XCTAssertEqual(decoded, report)
    }

    func testRoundTripWithoutOptionals() throws {
        var report = sampleReport()
        report.sweep = nil
        report.iterationsCheck = nil
        report.model.threatModel = nil
        report.model.producer = nil
        report.data.classNames = nil
        report.perClass[0].name = nil
        let text = String(decoding: try ReportJSON.encode(report), as: UTF8.self)
        // Absent parts stay as keys so that programs can rely on the key set.
        XCTAssertTrue(text.contains("\"sweep\" : null"), text)
        XCTAssertTrue(text.contains("\"threat_model\" : null"))
        XCTAssertEqual(try ReportJSON.decode(Data(text.utf8)), report)
    }

    func testStableKeysAndBytes() throws {
        let report = sampleReport()
        let first = try ReportJSON.encode(report)
        XCTAssertEqual(first, try ReportJSON.encode(report))
        let text = String(decoding: first, as: UTF8.self)
        for key in [
            "\"schema\" : \"rrmd.report/1\"", "\"worst_case\"", "\"robust_accuracy\"", "\"iterations_check\"",
            "\"per_class\"", "\"clean_accuracy\"", "\"epsilon_text\" : \"8/255\"", "\"num_classes\"", "\"class_names\"",
            "\"trained_by\"", "\"threat_model\"", "\"total_seconds\"", "\"clean_seconds\"", "\"rrmd_version\"",
            "\"class\" : 0", "\"target_classes\"", "\"norm\" : \"linf\"", "\"sha256\"",
        ] {
            XCTAssertTrue(text.contains(key), "JSON lacks \(key)")
        }
        XCTAssertFalse(text.contains("\\/"), "slashes must not be escaped")
        XCTAssertTrue(text.hasSuffix("}\n"))
        // Sorted keys: "attacks" comes before "clean" which comes before "data".
        let a = try XCTUnwrap(text.range(of: "\"attacks\""))
        let c = try XCTUnwrap(text.range(of: "\"clean\" :"))
        let d = try XCTUnwrap(text.range(of: "\"data\""))
        XCTAssertTrue(a.lowerBound < c.lowerBound && c.lowerBound < d.lowerBound)
    }

    func testTimestampIsUTC() {
        XCTAssertEqual(RobustnessReport.timestamp(Date(timeIntervalSince1970: 1_738_324_800)), "2025-01-31T12:00:00Z")
    }

    func testRefusesOtherSchemaAndNonFiniteNumbers() throws {
        var report = sampleReport()
        report.schema = "rrmd.report/2"
        XCTAssertThrowsError(try ReportJSON.decode(ReportJSON.encode(report))) { error in
            XCTAssertEqual(error as? ReportJSONError, .unsupportedSchema(found: "rrmd.report/2"))
        }
        report = sampleReport()
        report.attacks[1].robustAccuracy = .nan
        XCTAssertThrowsError(try ReportJSON.encode(report)) { error in
            XCTAssertTrue("\(error)".contains("attacks[1].robust_accuracy"), "\(error)")
        }
        XCTAssertThrowsError(try ReportJSON.decode(Data("{\"schema\":\"rrmd.report/1\"}".utf8))) { error in
            XCTAssertTrue("\(error)".contains("model"), "\(error)")
        }
    }
}

final class ReportMarkdownTests: XCTestCase {
    func testContainsTheNumbers() {
        let md = ReportMarkdown.render(sampleReport())
        for needle in [
            "# Robustness report: resnet20 ×1, L∞ ε = 8/255", "| Clean | 81.25% | 650 / 800 |",
            "| APGD-CE | 48.00% | 384 / 800 |", "| APGD-T | 47.62% | 381 / 800 |", "**47.50%**",
            "All 6 gradient-masking checks passed.", "PASS `iterations_monotone`",
            "(accuracy_vs_epsilon.svg)", "(per_class.svg)", "| 0.0313725 (8/255) | 48.50% |",
            "| 100 | 48.50% |", "| 3 | cat | 80 | 76.00% | 43.00% |", "iterations=50, restarts=10",
            "`abababab", "272,474", "480.8 s", "Threads: 2", "`linf:8/255`",
        ] {
            XCTAssertTrue(md.contains(needle), "Markdown lacks \(needle):\n\(md)")
        }
        XCTAssertFalse(md.contains("Possible gradient masking"))
    }

    func testFailuresFlaggedAtTheTop() {
        var report = sampleReport()
        report.sweep!.points[4].accuracy = 0.3
        report.checks = MaskingChecks.run(report)
        let md = ReportMarkdown.render(report)
        let flag = md.range(of: "**Possible gradient masking:**")
        XCTAssertNotNil(flag, md)
        XCTAssertLessThan(flag!.lowerBound, md.range(of: "## Summary")!.lowerBound)
        XCTAssertTrue(md.contains("**FAIL** `large_epsilon_breaks`"))
        XCTAssertTrue(md.contains("> - **`large_epsilon_breaks`**"))
    }

    func testOmitsAbsentSectionsAndEscapes() {
        var report = sampleReport()
        report.sweep = nil
        report.iterationsCheck = nil
        report.model.arch = "a|b"
        let md = ReportMarkdown.render(report)
        XCTAssertFalse(md.contains("accuracy_vs_epsilon.svg"))
        XCTAssertFalse(md.contains("## Iterations check"))
        XCTAssertTrue(md.contains("| Architecture | a\\|b |"))
    }
}

/// Collects what the SVG tests look at while proving the document is well-formed XML.
final class SVGCollector: NSObject, XMLParserDelegate {
    var polylineSeries: [String] = []
    var rectSeries: [String] = []
    var texts: [String] = []
    var root: [String: String] = [:]
    private var text = ""

    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        if name == "svg" { root = attributes }
        if name == "polyline" { polylineSeries.append(attributes["data-series"] ?? "") }
        if name == "rect", let series = attributes["data-series"] { rectSeries.append(series) }
        text = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "text" { texts.append(text) }
    }

    static func parse(_ svg: String, file: StaticString = #filePath, line: UInt = #line) -> SVGCollector {
        let collector = SVGCollector()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = collector
        XCTAssertTrue(
            parser.parse(), "SVG is not well-formed: \(String(describing: parser.parserError))\n\(svg)", file: file,
            line: line)
        return collector
    }
}

final class SVGChartTests: XCTestCase {
    func testSweepChart() throws {
        let svg = try XCTUnwrap(SVGChart.accuracyVsEpsilon(sampleReport()))
        let doc = SVGCollector.parse(svg)
        XCTAssertEqual(doc.polylineSeries, ["APGD-CE (200 samples)"])
        XCTAssertEqual(doc.root["width"], "720")
        XCTAssertEqual(doc.root["viewBox"], "0 0 720 440")
        XCTAssertEqual(doc.root["font-family"], "sans-serif")
        XCTAssertTrue(doc.texts.contains("ε = 8/255") && doc.texts.contains("20/255"), "\(doc.texts)")
        XCTAssertTrue(doc.texts.contains("100%"))
        XCTAssertTrue(doc.texts.contains("chance"))
        XCTAssertFalse(svg.contains("<script"))
        XCTAssertFalse(svg.contains("href"))
        XCTAssertNil(
            SVGChart.accuracyVsEpsilon(
                {
                    var r = sampleReport()
                    r.sweep = nil
                    return r
                }()))
    }

    func testLineChartHasOnePolylinePerSeriesAndEscapes() {
        let svg = SVGChart.lineChart(
            title: "A & B <test>", xTitle: "x \"axis\"", yTitle: "y",
            series: [
                .init(name: "first & 'one'", points: [.init(x: 0, y: 0.9), .init(x: 1, y: 0.5)]),
                .init(name: "second", points: [.init(x: 0.5, y: 0.7), .init(x: .nan, y: 1)]),
                .init(name: "ctl\u{1}char", points: [.init(x: 2, y: 0.1)]),
            ])
        let doc = SVGCollector.parse(svg)
        XCTAssertEqual(doc.polylineSeries, ["first & 'one'", "second", "ctl char"])
        XCTAssertTrue(doc.texts.contains("A & B <test>"))
        XCTAssertTrue(svg.contains("A &amp; B &lt;test&gt;"))
    }

    func testPerClassChart() {
        let doc = SVGCollector.parse(SVGChart.perClass(sampleReport()))
        XCTAssertEqual(doc.rectSeries.filter { $0 == "clean" }.count, 10)
        XCTAssertEqual(doc.rectSeries.filter { $0 == "robust (worst case)" }.count, 10)
        XCTAssertTrue(doc.texts.contains("airplane") && doc.texts.contains("truck"), "\(doc.texts)")

        var many = sampleReport()
        many.perClass = (0..<100).map { .init(classIndex: $0, samples: 5, cleanAccuracy: 0.5, robustAccuracy: 0.25) }
        many.data.classNames = nil
        XCTAssertEqual(SVGCollector.parse(SVGChart.perClass(many)).rectSeries.count, 200)

        var none = sampleReport()
        none.perClass = []
        XCTAssertTrue(SVGCollector.parse(SVGChart.perClass(none)).texts.contains("no per-class results"))
    }
}

final class MaskingChecksTests: XCTestCase {
    func testAllPassOnAnHonestReport() {
        let checks = MaskingChecks.run(sampleReport())
        XCTAssertEqual(
            checks.map(\.name),
            [
                "robust_not_above_clean", "iterations_monotone", "large_epsilon_breaks",
                "sweep_monotone", "targeted_not_weaker", "gradient_free_not_stronger",
            ])
        for c in checks { XCTAssertTrue(c.passed, "\(c.name): \(c.detail)") }
    }

    func testRobustNotAboveClean() {
        var report = sampleReport()
        XCTAssertTrue(check(MaskingChecks.robustNotAboveClean, report).detail.contains("81.25%"))
        report.attacks[2] = .init(name: "pgd", robustAccuracy: 0.825, correct: 660, seconds: 1)
        let failed = check(MaskingChecks.robustNotAboveClean, report)
        XCTAssertFalse(failed.passed)
        XCTAssertTrue(failed.detail.contains("pgd 82.50%"), failed.detail)

        report = sampleReport()
        report.worstCase = .init(robustAccuracy: 0.8135, correct: 651)
        XCTAssertFalse(check(MaskingChecks.robustNotAboveClean, report).passed)
    }

    func testIterationsMonotone() {
        var report = sampleReport()
        // 200 samples: the tolerance is 0.5 points (one sample); a rise of exactly that is noise.
        report.iterationsCheck!.points = [.init(iterations: 10, accuracy: 0.5), .init(iterations: 50, accuracy: 0.505)]
        XCTAssertTrue(check(MaskingChecks.iterationsMonotone, report).passed)
        report.iterationsCheck!.points = [.init(iterations: 100, accuracy: 0.52), .init(iterations: 10, accuracy: 0.5)]
        let failed = check(MaskingChecks.iterationsMonotone, report)
        XCTAssertFalse(failed.passed)
        XCTAssertTrue(failed.detail.contains("52.00%"), failed.detail)

        // Small rises that add up are caught, since each point is compared with the lowest so far.
        report.iterationsCheck!.points = [
            .init(iterations: 10, accuracy: 0.5), .init(iterations: 20, accuracy: 0.504),
            .init(iterations: 40, accuracy: 0.508),
        ]
        XCTAssertFalse(check(MaskingChecks.iterationsMonotone, report).passed)

        // Few samples: one sample (5 points of 20) is the tolerance.
        report.iterationsCheck = .init(
            attack: "apgd-ce", samples: 20,
            points: [.init(iterations: 10, accuracy: 0.5), .init(iterations: 50, accuracy: 0.55)])
        XCTAssertTrue(check(MaskingChecks.iterationsMonotone, report).passed)

        report.iterationsCheck = nil
        let skipped = check(MaskingChecks.iterationsMonotone, report)
        XCTAssertTrue(skipped.passed)
        XCTAssertTrue(skipped.detail.lowercased().contains("not run"))
    }

    func testLargeEpsilonBreaks() {
        var report = sampleReport()
        // Ten classes: chance is 10 %, so the bound is 12 %.
        report.sweep!.points[4].accuracy = 0.12
        XCTAssertTrue(check(MaskingChecks.largeEpsilonBreaks, report).passed)
        report.sweep!.points[4].accuracy = 0.125
        XCTAssertFalse(check(MaskingChecks.largeEpsilonBreaks, report).passed)

        // A hundred classes: chance + 2 points is below 5 %, so 5 % is the bound.
        report.data.numClasses = 100
        report.sweep!.points[4].accuracy = 0.05
        XCTAssertTrue(check(MaskingChecks.largeEpsilonBreaks, report).passed)
        report.sweep!.points[4].accuracy = 0.0525
        let failed = check(MaskingChecks.largeEpsilonBreaks, report)
        XCTAssertFalse(failed.passed)
        XCTAssertTrue(failed.detail.contains("5.25%") && failed.detail.contains("5.00%"), failed.detail)

        // Two classes: chance is 50 %, so up to 52 % counts as broken.
        report.data.numClasses = 2
        report.sweep!.points[4].accuracy = 0.52
        XCTAssertTrue(check(MaskingChecks.largeEpsilonBreaks, report).passed)
        report.sweep!.points[4].accuracy = 0.53
        XCTAssertFalse(check(MaskingChecks.largeEpsilonBreaks, report).passed)

        report.sweep = nil
        XCTAssertTrue(check(MaskingChecks.largeEpsilonBreaks, report).passed)
        XCTAssertTrue(check(MaskingChecks.largeEpsilonBreaks, report).detail.lowercased().contains("not run"))
    }

    func testSweepMonotone() {
        var report = sampleReport()
        report.sweep!.points[3].accuracy = 0.49  // 16/255 at 49 % after 48.5 % at 8/255: within 0.5 points
        XCTAssertTrue(check(MaskingChecks.sweepMonotone, report).passed)
        report.sweep!.points[3].accuracy = 0.6
        let failed = check(MaskingChecks.sweepMonotone, report)
        XCTAssertFalse(failed.passed)
        XCTAssertTrue(failed.detail.contains("60.00%"), failed.detail)

        report.sweep = nil
        XCTAssertTrue(check(MaskingChecks.sweepMonotone, report).passed)
        XCTAssertTrue(check(MaskingChecks.sweepMonotone, report).detail.lowercased().contains("not run"))
    }

    func testTargetedNotWeaker() {
        var report = sampleReport()
        report.attacks[1].robustAccuracy = 0.58  // exactly 10 points above apgd-ce
        XCTAssertTrue(check(MaskingChecks.targetedNotWeaker, report).passed)
        report.attacks[1].robustAccuracy = 0.6
        let failed = check(MaskingChecks.targetedNotWeaker, report)
        XCTAssertFalse(failed.passed)
        XCTAssertTrue(failed.detail.contains("60.00%") && failed.detail.contains("48.00%"), failed.detail)

        report.attacks.remove(at: 1)
        let skipped = check(MaskingChecks.targetedNotWeaker, report)
        XCTAssertTrue(skipped.passed)
        XCTAssertTrue(skipped.detail.lowercased().contains("not run"), skipped.detail)
    }

    func testGradientFreeNotStronger() {
        var report = sampleReport()
        XCTAssertTrue(check(MaskingChecks.gradientFreeNotStronger, report).detail.lowercased().contains("not run"))
        let strongest = report.attacks.map(\.robustAccuracy).min()!
        // 800 samples: the tolerance is one point.
        report.attacks.append(.init(name: "square", robustAccuracy: strongest - 0.01, correct: 0, seconds: 1))
        XCTAssertTrue(check(MaskingChecks.gradientFreeNotStronger, report).passed)
        report.attacks[report.attacks.count - 1].robustAccuracy = strongest - 0.02
        let failed = check(MaskingChecks.gradientFreeNotStronger, report)
        XCTAssertFalse(failed.passed)
        XCTAssertTrue(failed.detail.contains("masking"), failed.detail)
        // Square left more standing than the gradient attacks: nothing to suspect.
        report.attacks[report.attacks.count - 1].robustAccuracy = strongest + 0.1
        XCTAssertTrue(check(MaskingChecks.gradientFreeNotStronger, report).passed)
        XCTAssertEqual(MaskingChecks.gradientFreeTolerance(samples: 100), 0.02)

        // In a cascade only the attacks before square count: the ones after it saw its survivors.
        report = sampleReport()
        for i in report.attacks.indices { report.attacks[i].settings["cascade"] = "true" }
        report.attacks.insert(
            .init(name: "square", settings: ["cascade": "true"], robustAccuracy: 0.7, correct: 560, seconds: 1), at: 0)
        let first = check(MaskingChecks.gradientFreeNotStronger, report)
        XCTAssertTrue(first.passed)
        XCTAssertTrue(first.detail.contains("before square"), first.detail)
        report.attacks.swapAt(0, 1)  // apgd-ce, then square
        report.attacks[1].robustAccuracy = report.attacks[0].robustAccuracy - 0.05
        XCTAssertFalse(check(MaskingChecks.gradientFreeNotStronger, report).passed)
    }

    func testTolerance() {
        XCTAssertEqual(MaskingChecks.tolerance(samples: 10_000), 0.005)
        XCTAssertEqual(MaskingChecks.tolerance(samples: 100), 0.01)
        XCTAssertEqual(MaskingChecks.tolerance(samples: 0), 0.005)
    }
}

final class ReportWriterTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("rrmd-report-test-\(UUID().uuidString)")
            .appendingPathComponent("nested")  // the writer creates missing directories
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory.deletingLastPathComponent())
    }

    /// A failed system call keeps its errno, so the daemon can tell a full disk (retry) from a
    /// directory that can never hold the report.
    func testFailuresKeepTheirErrno() throws {
        let file = directory.deletingLastPathComponent().appendingPathComponent("a-file")
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data([1]).write(to: file)
        XCTAssertThrowsError(try ReportWriter.write(sampleReport(), to: file.appendingPathComponent("report"))) {
            error in
            guard let e = error as? ReportWriterError else { return XCTFail("\(error)") }
            XCTAssertEqual(e.errno, ENOTDIR, "\(e)")
            XCTAssertTrue(e.hint.contains("exists and is a directory"), e.hint)
        }
    }

    func testWritesFilesAndNoTemporaries() throws {
        let report = sampleReport()
        let urls = try ReportWriter.write(report, to: directory)
        XCTAssertEqual(
            urls.map(\.lastPathComponent), ["per_class.svg", "accuracy_vs_epsilon.svg", "report.md", "report.json"])
        let listing = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        XCTAssertEqual(listing, ["accuracy_vs_epsilon.svg", "per_class.svg", "report.json", "report.md"])
        XCTAssertEqual(try ReportJSON.decode(Data(contentsOf: directory.appendingPathComponent("report.json"))), report)
        XCTAssertEqual(
            try String(contentsOf: directory.appendingPathComponent("report.md"), encoding: .utf8),
            ReportMarkdown.render(report))
        _ = SVGCollector.parse(
            try String(contentsOf: directory.appendingPathComponent("accuracy_vs_epsilon.svg"), encoding: .utf8))

        // Rewriting without a sweep replaces the files and drops the stale chart.
        var second = report
        second.sweep = nil
        second.checks = MaskingChecks.run(second)
        XCTAssertEqual(try ReportWriter.write(second, to: directory).count, 3)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted(),
            ["per_class.svg", "report.json", "report.md"])
        XCTAssertEqual(try ReportJSON.decode(Data(contentsOf: directory.appendingPathComponent("report.json"))), second)
    }

    func testErrorsNameTheFile() throws {
        var report = sampleReport()
        report.clean.accuracy = .infinity
        XCTAssertThrowsError(try ReportWriter.write(report, to: directory)) { error in
            XCTAssertTrue("\(error)".contains("report.json") && "\(error)".contains("clean.accuracy"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.path), "nothing is written when encoding fails")

        // A regular file where the directory should be.
        try FileManager.default.createDirectory(
            at: directory.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data().write(to: directory)
        XCTAssertThrowsError(try ReportWriter.write(sampleReport(), to: directory)) { error in
            XCTAssertTrue("\(error)".contains(directory.path), "\(error)")
        }
    }
}
