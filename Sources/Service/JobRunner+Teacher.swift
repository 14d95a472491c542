import Checkpoint
import Data
import Evaluation
import FileSystem
import Foundation
import ModelIO
import Pipeline
import Spool

extension JobRunner {
    /// Runs the robustness protocol on a teacher or student, feeding the watchdog as it
    /// progresses, and writes its full report into `directory`. Attacked batches are kept in
    /// `journal` (in the job's work directory) as they finish, so an evaluation cut short by a
    /// stop, a crash or SIGKILL resumes where it was.
    func attack(
        _ model: EvaluatedModel, test: Dataset, settings: RobustnessSettings, reportTo directory: URL,
        journal: URL
    ) throws -> RobustnessReport {
        let kept = try StudentEvaluation.openJournal(journal.path, for: model, test: test, settings: settings)
        if kept.resumable > 0 {
            log.log(
                event: "evaluating",
                message:
                    "resuming the evaluation of \(model.path): \(kept.resumable) attacked batches kept from before",
                fields: ["batches": "\(kept.resumable)"])
        }
        return try StudentEvaluation.run(
            model, test: test, settings: settings, reportTo: directory, journal: kept,
            shouldStop: shouldStop
        ) { _ in
            _ = self.notifier.watchdog()
        }.report
    }

    /// Name of the file in `work/<job>/` that keeps the teacher's result once measured.
    static let teacherResultName = "teacher-robustness.json"

    /// Attacks the teacher under exactly the students' protocol (same test images, attacks,
    /// settings and seed), so that each student's robust accuracy can be stated as a share of
    /// the teacher's. Runs once per job: the result is kept in the work directory and a resumed
    /// job reads it back. Throws `EvaluationStopped` when a stop is requested meanwhile.
    func evaluateTeacher(
        _ job: ClaimedJob, teacher: LoadedModel, test: Dataset, evalSettings: RobustnessSettings,
        status: inout SpoolStatus.CurrentJob
    ) throws -> JobReport.Robustness {
        let saved = job.directory.appendingPathComponent(Self.teacherResultName)
        // Written by rrmd itself, but read like any file: an unreadable one is measured again.
        if let bytes = FileManager.default.contents(atPath: saved.path),
            let result = try? JSONDecoder().decode(JobReport.Robustness.self, from: bytes),
            result.robustAccuracy.isFinite, result.cleanAccuracy.isFinite
        {
            return result
        }
        status.arch = "teacher"
        status.phase = .evaluating
        onStatus(status)
        log.log(
            event: "evaluating",
            message:
                "job \(job.id): attacking the teacher (\(teacher.metadata.architecture)) with the students' protocol",
            fields: ["job": job.id.rawValue, "arch": teacher.metadata.architecture])
        let evaluated = EvaluatedModel(
            network: teacher.network, path: job.record.originalName, sha256: job.record.sha256,
            metadata: teacher.metadata)
        let report = try attack(
            evaluated, test: test, settings: evalSettings,
            reportTo: job.output.appendingPathComponent("reports/teacher"),
            journal: job.directory.appendingPathComponent("evaluation-teacher.journal"))
        return try recordTeacher(
            job, report: report, architecture: teacher.metadata.architecture, evalSettings: evalSettings)
    }

    /// The teacher's line in the job report from its evaluation: kept in the work directory
    /// (so a resumed job does not attack the teacher again) and announced in the journal.
    func recordTeacher(
        _ job: ClaimedJob, report: RobustnessReport, architecture: String, evalSettings: RobustnessSettings
    ) throws -> JobReport.Robustness {
        let saved = job.directory.appendingPathComponent(Self.teacherResultName)
        let result = JobReport.Robustness(
            cleanAccuracy: report.clean.accuracy, robustAccuracy: report.worstCase.robustAccuracy,
            evaluationSeconds: report.timing.totalSeconds, checksPassed: report.checks.allSatisfy(\.passed),
            report: "reports/teacher/report.md")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try writeAtomically(Array(try encoder.encode(result)), to: saved)
        let weak = result.robustAccuracy < 0.01
        log.log(
            event: "teacher", priority: weak ? .warning : .notice,
            message: String(
                format: "job %@: teacher %@ clean %.4f robust %.4f at %@ %@%@", job.id.rawValue,
                architecture,
                result.cleanAccuracy, result.robustAccuracy, evalSettings.norm.rawValue, evalSettings.epsilonText,
                weak
                    ? " (the teacher is not robust at this threat model: its students cannot inherit robustness it "
                        + "does not have)"
                    : ""),
            fields: [
                "job": job.id.rawValue, "arch": architecture,
                "clean_acc": String(format: "%.4f", result.cleanAccuracy),
                "robust_acc": String(format: "%.4f", result.robustAccuracy),
                "epsilon": evalSettings.epsilonText, "norm": evalSettings.norm.rawValue,
                "checks_passed": result.checksPassed ? "1" : "0",
            ])
        return result
    }
}
