import ArgumentParser
import Attacks
import Checkpoint
import Data
import Evaluation
import Foundation
import Kernels
import ModelIO

/// `rrmd evaluate`: the robustness protocol on a model, written as a report directory.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract:
            "Measure a model's clean and robust accuracy with strong attacks and write report.json, report.md and SVG "
            + "charts.",
        discussion: """
            Attacks: \(RobustnessSettings.knownAttacks.joined(separator: ", ")). Each runs on every clean-correct \
            test image; the worst case counts an image robust only if no attack fools it. The report also holds an \
            epsilon sweep, an iterations check, per-class accuracy and gradient-masking checks (see \
            docs/reports.md). Defaults follow AutoAttack's standard APGD settings; --samples, --iterations and \
            --target-classes trade strength for time.
            """)

    @Option(help: "Model checkpoint (.safetensors or .safetensors.zst).") var model: String
    @Option(help: "Dataset to evaluate on (default: the one in the model's metadata).") var dataset: String?
    @Option(
        name: .customLong("data-dir"),
        help: "Directory holding the dataset files (default: the dataset's standard location).") var dataDir: String?
    @Option(
        help:
            ArgumentHelp(
                "Which split to attack: test, or train (its first images, unaugmented: a model robust on its "
                    + "training images but not on test images overfitted).")
    ) var split = "test"
    @OptionGroup var evaluation: EvaluationOptions
    @Option(help: "Compute threads (default: all cores).") var threads = 0
    @Option(help: "Directory for report.json, report.md and the SVG charts (created if missing).") var report: String
    @Flag(help: "Also print report.json on stdout.") var json = false

    func run() throws {
        Compute.configure(threads: threads)
        let loaded = try ModelLoader.load(path: model, dataset: dataset)
        let meta = loaded.metadata
        let datasetName = dataset ?? meta.dataset
        let data = try DatasetCatalog.loadAny(
            datasetName, directory: dataDir, folderShape: loaded.network.config.inputShape)
        guard data.test.imageShape == loaded.network.config.inputShape, data.test.numClasses == meta.config.numClasses
        else {
            throw CommandFailure(
                "\(model) takes \(meta.config.inputShape) images and \(meta.config.numClasses) classes, but "
                    + "\(datasetName) has \(data.test.imageShape) and \(data.test.numClasses); evaluate it on the "
                    + "dataset it was trained for (\(meta.dataset))"
            )
        }
        guard split == "test" || split == "train" else {
            throw ValidationError("unknown --split '\(split)'; use test or train")
        }
        let settings = try evaluation.settings(threat: ThreatModel(meta.threatModel))
        if let problem = settings.problem(numClasses: data.test.numClasses) { throw ValidationError(problem) }

        let result = try runEvaluation(
            network: loaded.network, path: model, metadata: meta, test: split == "train" ? data.train : data.test,
            split: split,
            settings: settings, reportDirectory: report, journal: evaluation.journal, reporter: ProgressReporter())
        if json { print(String(decoding: try ReportJSON.encode(result), as: UTF8.self)) }
    }
}
