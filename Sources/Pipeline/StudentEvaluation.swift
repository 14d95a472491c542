import Data
import Evaluation
import Foundation
import ModelIO

/// The last step of a student's pipeline, shared by `rrmd distill`, `rrmd evaluate` and the
/// daemon: the robustness protocol on a model, its report directory written.
public enum StudentEvaluation {
    /// Attacks `model` under `settings` on `test`, writes the full report into `directory`, and
    /// returns the report with the files written. `shouldStop` is asked between batches
    /// (`EvaluationStopped` when it answers true); `progress` sees every batch.
    public static func run(_ model: EvaluatedModel, test: Dataset, settings: RobustnessSettings, reportTo directory: URL,
                           shouldStop: () -> Bool = { false },
                           progress: (RobustnessProgress) -> Void = { _ in }) throws -> (report: RobustnessReport, files: [URL]) {
        let report = try RobustnessEvaluator.evaluate(model, test: test, settings: settings, rrmdVersion: RRMDVersion.string,
                                                      shouldStop: shouldStop, progress: progress)
        return (report, try ReportWriter.write(report, to: directory))
    }
}
