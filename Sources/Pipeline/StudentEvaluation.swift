import Data
import Evaluation
import Foundation
import ModelIO

/// The last step of a student's pipeline, shared by `rrmd distill`, `rrmd evaluate` and the
/// daemon: the robustness protocol on a model, its report directory written.
public enum StudentEvaluation {
    /// Attacks `model` under `settings` on `test`, writes the full report into `directory`, and
    /// returns the report with the files written. `shouldStop` is asked between batches
    /// (`EvaluationStopped` when it answers true); `progress` sees every batch. With a `journal`
    /// (`openJournal`), attacked batches are kept in it as they finish, batches it already holds
    /// are read back instead of attacked, and its file is removed once the report is written.
    public static func run(
        _ model: EvaluatedModel, test: Dataset, split: String = "test", settings: RobustnessSettings,
        reportTo directory: URL, journal: EvaluationJournal? = nil, shouldStop: () -> Bool = { false },
        progress: (RobustnessProgress) -> Void = { _ in }
    ) throws -> (report: RobustnessReport, files: [URL]) {
        let report = try RobustnessEvaluator.evaluate(
            model, test: test, split: split, settings: settings, rrmdVersion: RRMDVersion.string,
            journal: journal, shouldStop: shouldStop, progress: progress)
        let files = try ReportWriter.write(report, to: directory)
        journal?.remove()
        return (report, files)
    }

    /// The journal at `path` for evaluating `model` under `settings` on `test`: what an earlier,
    /// interrupted run of exactly that evaluation finished is kept, anything else started over.
    public static func openJournal(
        _ path: String, for model: EvaluatedModel, test: Dataset, split: String = "test",
        settings: RobustnessSettings
    ) throws -> EvaluationJournal {
        try EvaluationJournal(
            path: path,
            identity: RobustnessEvaluator.journalIdentity(model, test: test, split: split, settings: settings))
    }
}
