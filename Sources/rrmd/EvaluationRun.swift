import Checkpoint
import Data
import Evaluation
import FileSystem
import Foundation
import Kernels
import ModelIO
import Models
import Pipeline

/// Runs the robustness protocol on a saved model with progress on stderr, writes the report
/// directory and prints the headline numbers; shared by `evaluate` and `distill`.
func runEvaluation(
    network: Network, path: String, metadata: ModelMetadata, test: Dataset, split: String = "test",
    settings: RobustnessSettings, reportDirectory: String, journal: String?, reporter: ProgressReporter
) throws -> RobustnessReport {
    let sha = try SHA256.hex(contentsOfFile: path)
    let evaluated = EvaluatedModel(network: network, path: path, sha256: sha, metadata: metadata)
    let n = min(settings.samples ?? test.count, test.count)
    let images = split == "test" ? "test images" : "training images"
    reporter.line(
        "evaluating \(metadata.architecture) (\(metadata.trainedBy ?? "unknown training"), threat model "
            + "\(metadata.threatModel)) on \(n) \(test.name) \(images): \(settings.norm.rawValue) epsilon "
                + "\(settings.epsilonText), \(settings.attacks.joined(separator: ", ")), \(settings.iterations) "
                    + "iterations, \(Compute.threads) threads"
    )
    var phase = ""
    var phaseStart = Date()
    let kept = try journal.map {
        try StudentEvaluation.openJournal($0, for: evaluated, test: test, split: split, settings: settings)
    }
    if let kept, kept.resumable > 0 {
        reporter.line("resuming: \(kept.resumable) attacked batches read back from \(kept.path)")
    }
    if let kept, kept.discardedOther { reporter.line("\(kept.path) held another evaluation's batches; starting over") }
    let (result, files) = try StudentEvaluation.run(
        evaluated, test: test, split: split, settings: settings,
        reportTo: URL(fileURLWithPath: reportDirectory), journal: kept,
        progress: { p in
            if p.phase != phase {
                phase = p.phase
                phaseStart = Date()
            }
            let elapsed = Date().timeIntervalSince(phaseStart)
            // A rate over a few milliseconds is noise; show none until there is something to measure.
            reporter.update(
                label: p.phase, done: p.done, total: p.total, rate: elapsed > 0.5 ? Double(p.done) / elapsed : 0,
                unit: "images", detail: "")
        })
    reporter.line(String(format: "clean accuracy %.2f%%", 100 * result.clean.accuracy))
    for a in result.attacks {
        reporter.line(String(format: "%@ robust accuracy %.2f%% (%.0f s)", a.name, 100 * a.robustAccuracy, a.seconds))
    }
    reporter.line(
        String(
            format: "worst case over %d attacks: %.2f%%", result.attacks.count, 100 * result.worstCase.robustAccuracy))
    for c in result.checks where !c.passed { reporter.line("WARNING: check \(c.name) failed: \(c.detail)") }
    reporter.line(
        String(
            format: "report in %@ (%@) after %.0f s", reportDirectory,
            files.map(\.lastPathComponent).joined(separator: ", "), result.timing.totalSeconds))
    return result
}
