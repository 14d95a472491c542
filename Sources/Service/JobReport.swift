import Checkpoint
import Evaluation
import Foundation

/// The job-level summary published as `done/<job>/report.json` and `report.md`: the teacher and
/// one line per student, each pointing at its full robustness report under `reports/<arch>/`.
public struct JobReport: Codable, Equatable, Sendable {
    /// Schema of this file.
    public static let currentSchema = "rrmd.job/1"

    /// What was distilled from.
    public struct Teacher: Codable, Equatable, Sendable {
        public var name, sha256, arch, dataset, threatModel: String
        public var trainedBy: String?
        enum CodingKeys: String, CodingKey {
            case name, sha256, arch, dataset, threatModel = "threat_model", trainedBy = "trained_by"
        }
    }

    /// One distilled student.
    public struct Student: Codable, Equatable, Sendable {
        public var arch: String
        public var width: Double
        public var projection: Int?
        public var checkpoint, report: String
        public var cleanAccuracy, robustAccuracy: Double
        public var trainingSeconds, evaluationSeconds: Double
        public var checksPassed: Bool
        enum CodingKeys: String, CodingKey {
            case arch, width, projection, checkpoint, report, cleanAccuracy = "clean_accuracy", robustAccuracy = "robust_accuracy"
            case trainingSeconds = "training_seconds", evaluationSeconds = "evaluation_seconds", checksPassed = "checks_passed"
        }
    }

    public var schema = JobReport.currentSchema
    public var job: String
    public var teacher: Teacher
    public var threat: String
    public var students: [Student]
    public var created: String
    public var rrmdVersion: String

    enum CodingKeys: String, CodingKey {
        case schema, job, teacher, threat, students, created, rrmdVersion = "rrmd_version"
    }

    /// Writes `report.json`, `report.md` and `students.svg` into `directory`, each atomically.
    public func write(to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try writeAtomically(Array(try encoder.encode(self)) + [10], to: directory.appendingPathComponent("report.json"))
        try writeAtomically(Array(markdown().utf8), to: directory.appendingPathComponent("report.md"))
        let chart = SVGChart.groupedBars(
            title: "Students of \(teacher.arch) (\(threat))", yTitle: "accuracy", seriesNames: ["clean", "robust (worst case)"],
            groups: students.map { SVGChart.BarGroup(label: $0.arch, values: [$0.cleanAccuracy, $0.robustAccuracy]) })
        try writeAtomically(Array(chart.utf8), to: directory.appendingPathComponent("students.svg"))
    }

    /// The report for people.
    public func markdown() -> String {
        func pct(_ x: Double) -> String { String(format: "%.2f%%", 100 * x) }
        // Int(_:) traps on NaN and infinity; a report must never bring the daemon down.
        func seconds(_ x: Double) -> String { x.isFinite && abs(x) < 1e15 ? "\(Int(x)) s" : "–" }
        var lines = [
            "# rrmd job \(job)", "",
            "Teacher `\(teacher.name)`: \(teacher.arch) on \(teacher.dataset), \(teacher.trainedBy ?? "unknown training"), threat model \(teacher.threatModel), SHA-256 `\(teacher.sha256)`.",
            "Students distilled with Robust Representation Matching and attacked at \(threat).", "",
            "![Clean and robust accuracy per student](students.svg)", "",
            "| student | clean | robust (worst case) | training | evaluation | checks | report |",
            "|---|--:|--:|--:|--:|---|---|",
        ]
        for s in students {
            lines.append("| \(s.arch) ×\(s.width)\(s.projection.map { ", projection \($0)" } ?? "") | \(pct(s.cleanAccuracy)) | \(pct(s.robustAccuracy)) | \(seconds(s.trainingSeconds)) | \(seconds(s.evaluationSeconds)) | \(s.checksPassed ? "pass" : "**FAILED**") | [\(s.report)](\(s.report)) |")
        }
        lines += ["", "Created \(created) by rrmd \(rrmdVersion).", ""]
        return lines.joined(separator: "\n")
    }
}
