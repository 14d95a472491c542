import ArgumentParser
import Attacks
import Checkpoint
import Data
import Evaluation
import Foundation
import Kernels
import Training

/// `rrmd evaluate`: the robustness protocol on a model, written as a report directory.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Measure a model's clean and robust accuracy with strong attacks and write report.json, report.md and SVG charts.",
        discussion: """
            Attacks: \(RobustnessSettings.knownAttacks.joined(separator: ", ")). Each runs on every clean-correct test image; \
            the worst case counts an image robust only if no attack fools it. The report also holds an epsilon sweep, an \
            iterations check, per-class accuracy and gradient-masking checks (see docs/reports.md). Defaults follow \
            AutoAttack's standard APGD settings; --samples, --iterations and --target-classes trade strength for time.
            """)

    @Option(help: "Model checkpoint (.safetensors or .safetensors.zst).") var model: String
    @Option(help: "Dataset to evaluate on (default: the one in the model's metadata).") var dataset: String?
    @Option(name: .customLong("data-dir"), help: "Directory holding the dataset files (default: the dataset's standard location).") var dataDir: String?
    @Option(help: "Threat-model norm: linf or l2 (default: the model's threat model, else linf).") var norm: String?
    @Option(help: "Attack radius in [0, 1] pixel units, e.g. 0.1 or 8/255 (default: the model's threat model, else 8/255).") var epsilon: String?
    @Option(help: "Comma-separated attacks.") var attacks = "apgd-ce,apgd-t"
    @Option(help: "Evaluate the first N test images (default: all).") var samples: Int?
    @Option(help: "APGD and PGD iterations.") var iterations = 100
    @Option(help: "Restarts of each attack.") var restarts = 1
    @Option(name: .customLong("target-classes"), help: "Target classes of apgd-t.") var targetClasses = 9
    @Option(name: .customLong("sweep-samples"), help: "Images in the epsilon sweep (0: no sweep).") var sweepSamples = 1000
    @Option(name: .customLong("check-samples"), help: "Images in the iterations check (0: no check).") var checkSamples = 500
    @Option(name: .customLong("batch-size"), help: "Images attacked together.") var batchSize = 200
    @Option(help: "Seed of the attacks' random starts.") var seed: UInt64 = 0
    @Option(help: "Compute threads (default: all cores).") var threads = 0
    @Option(help: "Directory for report.json, report.md and the SVG charts (created if missing).") var report: String
    @Flag(help: "Also print report.json on stdout.") var json = false

    func run() throws {
        Compute.configure(threads: threads)
        let loaded = try ModelLoader.load(path: model, dataset: dataset)
        let meta = loaded.metadata
        let datasetName = dataset ?? meta.dataset
        let data = try DatasetCatalog.load(datasetName, directory: dataDir)
        guard data.test.imageShape == loaded.network.config.inputShape, data.test.numClasses == meta.config.numClasses else {
            throw CommandFailure("\(model) takes \(meta.config.inputShape) images and \(meta.config.numClasses) classes, but \(datasetName) has \(data.test.imageShape) and \(data.test.numClasses); evaluate it on the dataset it was trained for (\(meta.dataset))")
        }
        let settings = try makeSettings(threat: ThreatModel(meta.threatModel))
        if let problem = settings.problem(numClasses: data.test.numClasses) { throw ValidationError(problem) }

        let reporter = ProgressReporter()
        let sha = try SHA256.hex(contentsOfFile: model)
        let evaluated = EvaluatedModel(network: loaded.network, path: model, sha256: sha, metadata: meta)
        let n = min(settings.samples ?? data.test.count, data.test.count)
        reporter.line("evaluating \(meta.architecture) (\(meta.trainedBy ?? "unknown training"), threat model \(meta.threatModel)) on \(n) \(datasetName) test images: \(settings.norm.rawValue) epsilon \(settings.epsilonText), \(settings.attacks.joined(separator: ", ")), \(settings.iterations) iterations, \(Compute.threads) threads")
        var phase = "", phaseStart = Date()
        let result = RobustnessEvaluator.evaluate(evaluated, test: data.test, settings: settings, rrmdVersion: RRMDVersion.string) { p in
            if p.phase != phase { phase = p.phase; phaseStart = Date() }
            let elapsed = Date().timeIntervalSince(phaseStart)
            reporter.update(label: p.phase, done: p.done, total: p.total, rate: elapsed > 0 ? Double(p.done) / elapsed : 0,
                            unit: "images", detail: "")
        }
        let files = try ReportWriter.write(result, to: URL(fileURLWithPath: report))

        reporter.line(String(format: "clean accuracy %.2f%%", 100 * result.clean.accuracy))
        for a in result.attacks {
            reporter.line(String(format: "%@ robust accuracy %.2f%% (%.0f s)", a.name, 100 * a.robustAccuracy, a.seconds))
        }
        reporter.line(String(format: "worst case over %d attacks: %.2f%%", result.attacks.count, 100 * result.worstCase.robustAccuracy))
        for c in result.checks where !c.passed { reporter.line("WARNING: check \(c.name) failed: \(c.detail)") }
        reporter.line(String(format: "report in %@ (%@) after %.0f s", report, files.map(\.lastPathComponent).joined(separator: ", "), result.timing.totalSeconds))
        if json { print(String(decoding: try ReportJSON.encode(result), as: UTF8.self)) }
    }

    /// The evaluation settings from the options, falling back to the model's own threat model.
    private func makeSettings(threat: ThreatModel?) throws -> RobustnessSettings {
        let normText = norm ?? threat?.norm?.rawValue ?? "linf"
        guard let threatNorm = ThreatNorm(rawValue: normText) else { throw ValidationError("unknown --norm '\(normText)'; use linf or l2") }
        let epsText: String
        if let epsilon { epsText = epsilon }
        else if let t = threat, t.norm?.rawValue == normText, t.epsilon > 0 { epsText = "\(t.epsilon)" }
        else if threatNorm == .linf { epsText = "8/255" }
        else { throw ValidationError("--norm l2 needs --epsilon (e.g. 0.5) when the model's metadata has no L2 threat model") }
        guard let eps = parseEpsilon(epsText), eps > 0 else { throw ValidationError("--epsilon '\(epsText)' is not a positive number or fraction such as 8/255") }
        return RobustnessSettings(
            norm: threatNorm, epsilon: eps, epsilonText: epsText,
            attacks: attacks.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) },
            samples: samples, batchSize: batchSize, iterations: iterations, restarts: restarts, targetClasses: targetClasses,
            sweepSamples: sweepSamples, checkSamples: checkSamples, seed: seed)
    }
}
