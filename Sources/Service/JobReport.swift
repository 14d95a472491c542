import Checkpoint
import Evaluation
import FileSystem
import Foundation

/// The job-level summary published as `done/<job>/report.json` and `report.md`: the teacher and
/// one line per student, each pointing at its full robustness report under `reports/<arch>/`.
public struct JobReport: Codable, Equatable, Sendable {
    /// Schema of this file.
    public static let currentSchema = "rrmd.job/1"

    /// What was distilled from, and how robust it measured under the students' protocol.
    public struct Teacher: Codable, Equatable, Sendable {
        public var name, sha256, arch, dataset, threatModel: String
        public var trainedBy: String?
        /// The teacher attacked exactly as its students (same images, attacks and settings);
        /// nil only in reports of rrmd versions that did not evaluate teachers.
        public var robustness: Robustness?
        enum CodingKeys: String, CodingKey {
            case name, sha256, arch, dataset
            case threatModel = "threat_model"
            case trainedBy = "trained_by"
            case robustness
        }
    }

    /// A model's result under the job's protocol, kept in the work directory so a resumed job
    /// does not attack the teacher again.
    public struct Robustness: Codable, Equatable, Sendable {
        public var cleanAccuracy, robustAccuracy: Double
        public var evaluationSeconds: Double
        public var checksPassed: Bool
        /// The full robustness report, relative to the job's directory.
        public var report: String
        enum CodingKeys: String, CodingKey {
            case cleanAccuracy = "clean_accuracy"
            case robustAccuracy = "robust_accuracy"
            case evaluationSeconds = "evaluation_seconds"
            case checksPassed = "checks_passed"
            case report
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
        /// `robustAccuracy` over the teacher's: the share of the teacher's robustness the student
        /// kept (nil when the teacher has none to keep).
        public var retained: Double?
        enum CodingKeys: String, CodingKey {
            case arch, width, projection, checkpoint, report
            case cleanAccuracy = "clean_accuracy"
            case robustAccuracy = "robust_accuracy"
            case trainingSeconds = "training_seconds"
            case evaluationSeconds = "evaluation_seconds"
            case checksPassed = "checks_passed"
            case retained
        }
    }

    /// `student / teacher` robust accuracy, or nil when the teacher's is zero (or not finite).
    public static func retained(student: Double, teacher: Double?) -> Double? {
        guard let teacher, teacher > 0, teacher.isFinite, student.isFinite else { return nil }
        return student / teacher
    }

    public var schema = JobReport.currentSchema
    public var job: String
    public var teacher: Teacher
    public var threat: String
    public var students: [Student]
    public var created: String
    public var rrmdVersion: String

    enum CodingKeys: String, CodingKey {
        case schema, job, teacher, threat, students, created
        case rrmdVersion = "rrmd_version"
    }

    /// Writes `report.json`, `report.md` and `students.svg` into `directory`, each atomically.
    public func write(to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try writeAtomically(Array(try encoder.encode(self)) + [10], to: directory.appendingPathComponent("report.json"))
        try writeAtomically(Array(markdown().utf8), to: directory.appendingPathComponent("report.md"))
        let chart = SVGChart.groupedBars(
            title: "Students of \(teacher.arch) (\(threat))", yTitle: "accuracy",
            seriesNames: ["clean", "robust (worst case)"],
            groups: (teacher.robustness.map {
                [SVGChart.BarGroup(label: "teacher \(teacher.arch)", values: [$0.cleanAccuracy, $0.robustAccuracy])]
            } ?? [])
                + students.map { SVGChart.BarGroup(label: $0.arch, values: [$0.cleanAccuracy, $0.robustAccuracy]) })
        try writeAtomically(Array(chart.utf8), to: directory.appendingPathComponent("students.svg"))
    }

    /// The report for people.
    public func markdown() -> String {
        func pct(_ x: Double) -> String { String(format: "%.2f%%", 100 * x) }
        // Int(_:) traps on NaN and infinity; a report must never bring the daemon down.
        func seconds(_ x: Double) -> String { x.isFinite && abs(x) < 1e15 ? "\(Int(x)) s" : "–" }
        func kept(_ x: Double?) -> String { x.map { String(format: "%.0f%%", 100 * $0) } ?? "–" }
        var lines = [
            "# rrmd job \(job)", "",
            "Teacher `\(teacher.name)`: \(teacher.arch) on \(teacher.dataset), "
                + "\(teacher.trainedBy ?? "unknown training"), threat model \(teacher.threatModel), SHA-256 "
                    + "`\(teacher.sha256)`.",
            "Students distilled with Robust Representation Matching; teacher and students attacked alike at \(threat).",
            "",
            "![Clean and robust accuracy of the teacher and each student](students.svg)", "",
            "| model | clean | robust (worst case) | kept of the teacher's robustness | training | evaluation | "
                + "checks | report |",
            "|---|--:|--:|--:|--:|--:|---|---|",
        ]
        if let t = teacher.robustness {
            lines.append(
                "| teacher \(teacher.arch) | \(pct(t.cleanAccuracy)) | \(pct(t.robustAccuracy)) | | | "
                    + "\(seconds(t.evaluationSeconds)) | \(t.checksPassed ? "pass" : "**FAILED**") | "
                        + "[\(t.report)](\(t.report)) |"
            )
        }
        for s in students {
            lines.append(
                "| \(s.arch) ×\(s.width)\(s.projection.map { ", projection \($0)" } ?? "") | \(pct(s.cleanAccuracy)) "
                    + "| \(pct(s.robustAccuracy)) | \(kept(s.retained)) | \(seconds(s.trainingSeconds)) | "
                        + "\(seconds(s.evaluationSeconds)) | \(s.checksPassed ? "pass" : "**FAILED**") | "
                            + "[\(s.report)](\(s.report)) |"
            )
        }
        lines += [
            "",
            "*Clean* is the accuracy on unmodified test images; *robust (worst case)* the share of them that stays "
                + "correct under every attack of the protocol, "
                + "i.e. what an attacker within \(threat) cannot break. *Kept* is a student's robust accuracy divided "
                    + "by the teacher's: how much of "
                + "the robustness the teacher paid for in adversarial training the student received by matching its "
                    + "representation, without running an attack of its own. "
                + "A naturally trained network of the same architecture typically keeps close to none. *Checks* are "
                    + "the gradient-masking checks of each full report.",
            "", "Created \(created) by rrmd \(rrmdVersion).", "",
        ]
        return lines.joined(separator: "\n")
    }
}
