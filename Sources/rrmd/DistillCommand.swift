import ArgumentParser
import Attacks
import Checkpoint
import Data
import Evaluation
import FileSystem
import Foundation
import Kernels
import ModelIO
import Models
import NN
import Pipeline
import Training

/// `rrmd distill`: Robust Representation Matching from a robust teacher into a student of
/// another architecture, then the robustness protocol on the student.
struct DistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract:
            "Distil a robust student from a robust teacher with Robust Representation Matching, then evaluate it.",
        discussion: """
            The loss is xent-weight * CE + mean(1 - cos(z_student, z_teacher)) on penultimate representations (or \
            the relative L2 distance with --feature-loss l2); the teacher is frozen in inference mode and sees the \
            same augmented batch. A student whose representation width differs from the teacher's gets a trained \
            linear projection (saved as projection.weight). By default each batch is replayed 4 times: every step \
            after the first matches student and teacher again at the batch pushed within the teacher's L-inf epsilon \
            along the previous step's input gradient (which every backward pass computes anyway), so the student \
            also follows the teacher where an attacker would take it; 5 epochs of that kept 95% of the teacher's \
            robust accuracy in docs/rrm-study.md, where the paper's recipe (--replays 1, clean batches only) kept \
            58%. The optimiser is the paper's: SGD momentum 0.9, weight decay 5e-4, lr 0.1 with per-iteration cosine \
            annealing to 1e-6, batch 128. The run saves its state at every epoch end and on Ctrl-C in OUT.state and \
            continues from it when run again; the report goes next to the student.
            """)

    @Option(help: "Teacher checkpoint (.safetensors or .safetensors.zst), ideally adversarially trained.") var teacher:
        String
    @Option(help: "Student architecture.") var student: String
    @Option(help: "Dataset (default: the teacher's).") var dataset: String?
    @Option(name: .customLong("data-dir"), help: "Directory holding the dataset files.") var dataDir: String?
    @Option(help: "Output student checkpoint (.safetensors.zst compresses).") var out: String
    @Option(
        help:
            ArgumentHelp(
                "Epochs (passes over the training set; with --replays R each batch takes R steps). Default 5 "
                    + "with 4 replays: docs/rrm-study.md; the paper's recipe is --epochs 48 --replays 1.")
    ) var epochs = 5
    @Option(
        name: .customLong("xent-weight"),
        help:
            ArgumentHelp(
                "Weight of the cross-entropy term (default 0.5 with replays, the paper's 0.005 with one step "
                    + "per batch; the paper's L2 setting used 5e-5).")
    ) var xentWeight: Float?
    @Option(name: .customLong("feature-loss"), help: "cosine or l2 (relative L2 distance).") var featureLoss = "cosine"
    @Option(
        name: .customLong("match-noise"),
        help:
            ArgumentHelp(
                "Half-width of uniform noise added to the images student and teacher are matched on (0: the "
                    + "paper's clean matching; accepts fractions such as 8/255).")
    ) var matchNoise = "0"
    @Option(
        help:
            ArgumentHelp(
                "Optimiser steps per batch (1: the paper's method); replays after the first match at images "
                    + "moved along "
                    + "the sign of the previous replay's input gradient, within the teacher's L-inf epsilon (Free-AT's "
                    + "replay applied to the matching). Each replay costs one step: divide --epochs by it to keep the "
                    + "cost. Default 4 (docs/rrm-study.md) for an L-inf teacher, else 1; 1 is the paper's method.")
    ) var replays: Int?
    @Option(
        name: .customLong("epsilon-ramp"),
        help:
            ArgumentHelp(
                "Epochs over which the replays' radius grows linearly from 0 to the teacher's epsilon (0: full "
                    + "radius from the first step), as adversarial training ramps its attack. Default 1 for a "
                    + "random start, 0 from the clean batch.")
    ) var epsilonRamp: Double?
    @Option(
        name: .customLong("replay-start"),
        help:
            ArgumentHelp(
                "Where a batch's replays start: random (a uniform random point of the teacher's epsilon ball, "
                    + "FGSM-RS's start; the default with replays) or clean (the batch itself). From the clean batch "
                    + "students overfitted to their replays on MNIST at 0.3 (4.6% robust against 61.9%); see "
                    + "docs/rrm-study.md.")
    ) var replayStart: String?
    @Option(
        name: .customLong("replay-step"),
        help:
            ArgumentHelp(
                "A replay's step as a fraction of the teacher's epsilon, in (0, 1] (1: Free-AT's whole-radius "
                    + "step, which puts every later replay on a corner of the ball).")
    ) var replayStep: Float = 1
    @Option(
        help:
            ArgumentHelp(
                "When the student gets a projection head to the teacher's width: auto (only when its own "
                    + "width differs) or always.")
    ) var projection = "auto"
    @Flag(
        name: .customLong("projection-bias"),
        help: "Give the projection head a bias (the paper's extra ResNet-50 layer had one; rrmd's default has none).")
    var projectionBias = false
    @Option(
        help:
            ArgumentHelp(
                "Where the student's classifier comes from: own (trained with it, the paper's method) or teacher "
                    + "(after training, the teacher's classifier scaled onto the student's representation; see "
                    + "`rrmd teacher-classifier`).")
    ) var classifier = "own"
    @Option(
        name: .customLong("probe-images"),
        help:
            ArgumentHelp(
                "Images attacked with APGD-CE after every epoch to follow the student's robustness (0: none). "
                    + "Replayed training can lose its robustness late in a run while clean accuracy still rises.")
    ) var probeImages = 512
    @Option(name: .customLong("probe-iterations"), help: "APGD-CE iterations of the probe.") var probeIterations = 50
    @Option(
        name: .customLong("probe-split"),
        help: "Where the probe's images come from: train (the first training images, unaugmented) or test.")
    var probeSplit = "train"
    @Option(
        name: .customLong("probe-restore"),
        help:
            ArgumentHelp(
                "Points the last epoch's probe may lie under the best epoch's before the run ends with the best "
                    + "epoch's weights instead (off: only measure).")
    ) var probeRestore = "10"
    @Option(help: "Width multiplier of the student.") var width = 1.0
    @Option(name: .customLong("batch-size"), help: "Images per step.") var batchSize = 128
    @Option(help: "Peak learning rate.") var lr: Float = 0.1
    @Option(help: "Random seed (initialisation, shuffling, augmentation).") var seed: UInt64 = 0
    @Option(help: "Compute threads (default: all cores).") var threads = 0
    @Option(help: "Use only the first N training and test samples (quick runs).") var limit: Int?
    @Option(help: "Resumable state file (default: OUT.state; removed when the student is saved).") var state: String?
    @Option(help: "Report directory (default: OUT without its extension, plus .report).") var report: String?
    @Flag(name: .customLong("no-evaluate"), help: "Skip the robustness evaluation.") var noEvaluate = false
    @Flag(help: "Print a JSON summary on stdout at the end.") var json = false
    @OptionGroup var evaluation: EvaluationOptions

    func run() throws {
        Compute.configure(threads: threads)
        guard let loss = FeatureLoss(rawValue: featureLoss) else {
            throw ValidationError("unknown --feature-loss '\(featureLoss)'; use cosine or l2")
        }
        guard let noise = parseEpsilon(matchNoise) else {
            throw ValidationError("--match-noise '\(matchNoise)' is not a number or fraction in [0, 1]")
        }
        let reporter = ProgressReporter()
        let teacherModel = try ModelLoader.load(path: teacher, dataset: dataset)
        let tmeta = teacherModel.metadata
        let datasetName = dataset ?? tmeta.dataset
        let data = try DatasetCatalog.loadAny(
            datasetName, directory: dataDir, limit: limit, folderShape: teacherModel.network.config.inputShape)
        if let problem = Distiller.compatibilityProblem(teacher: tmeta, train: data.train) {
            throw CommandFailure("\(teacher): \(problem)")
        }
        let threat = ThreatModel(tmeta.threatModel)
        // Replays perturb within the teacher's L-inf ball; other teachers get the paper's method
        // unless replays were asked for explicitly.
        if let asked = self.replays, asked > 1, threat?.norm != .linf {
            throw ValidationError(
                "--replays perturbs within an L-inf ball, but the teacher's threat model is \(tmeta.threatModel)")
        }
        let replays = self.replays ?? (threat?.norm == .linf ? 4 : 1)
        let startText = replayStart ?? RRMLoss.defaultReplayStart(replays: replays).rawValue
        guard let start = ReplayStart(rawValue: startText) else {
            throw ValidationError("unknown --replay-start '\(startText)'; use clean or random")
        }
        let epsilonRamp = self.epsilonRamp ?? (replays > 1 ? RRMLoss.defaultEpsilonRamp(replayStart: start) : 0)
        var settings = TrainingSettings(
            epochs: epochs, batchSize: batchSize, learningRate: lr, schedule: .cosine,
            sgd: .init(momentum: 0.9, weightDecay: 5e-4), cropPadding: max(data.train.height, data.train.width) / 8,
            horizontalFlip: true, seed: seed,
            objective: .rrm(
                RRMLoss(
                    xentWeight: xentWeight ?? RRMLoss.defaultXentWeight(replays: replays), featureLoss: loss,
                    inputNoise: Float(noise), replays: replays,
                    replayEpsilon: replays > 1 ? Float(threat?.epsilon ?? 0) : 0,
                    replayStart: start)))
        settings.epsilonRampEpochs = epsilonRamp
        if case .rrm(var l) = settings.objective {
            l.replayStepFraction = replayStep
            settings.objective = .rrm(l)
        }
        if let problem = settings.problem() { throw ValidationError(problem) }
        let evalSettings = try evaluation.settings(threat: threat)
        if !noEvaluate, let problem = evalSettings.problem(numClasses: data.test.numClasses) {
            throw ValidationError(problem)
        }
        if threat?.norm == nil {
            reporter.line(
                "warning: the teacher's metadata declares no threat model (rrm.threat_model = \(tmeta.threatModel)); "
                    + "RRM transfers only the robustness the teacher has"
            )
        }

        guard projection == "auto" || projection == "always" else {
            throw ValidationError("unknown --projection '\(projection)'; use auto or always")
        }
        guard let source = StudentHead.Classifier(rawValue: classifier) else {
            throw ValidationError("unknown --classifier '\(classifier)'; use own or teacher")
        }
        var request = DistillationRequest(
            teacher: teacherModel, teacherPath: teacher, teacherSHA256: try SHA256.hex(contentsOfFile: teacher),
            student: student,
            width: width, train: data.train, test: data.test, settings: settings, statePath: state ?? out + ".state",
            outPath: out,
            producer: RRMDVersion.producer)
        request.head = StudentHead(always: projection == "always", bias: projectionBias, classifier: source)
        request.probe = try makeProbe(threat: threat, data: data)
        ProcessSignals.installStopHandlers()
        reporter.line(
            "distilling \(student) ×\(width) from \(tmeta.architecture) (\(tmeta.trainedBy ?? "unknown training"), "
                + "\(tmeta.threatModel)) on \(datasetName): \(data.train.count) images, \(epochs) epochs, "
                + "\(settings.objective.summary)\(epsilonRamp > 0 ? " (replay radius ramped up over \(epsilonRamp) epochs)" : ""), "
                + "\(Compute.threads) threads"
        )
        let finished = try Distiller.run(
            request, shouldStop: { ProcessSignals.stopRequested },
            resumed: { p in
                reporter.line("resuming from \(request.statePath) at epoch \(p.epoch + 1), step \(p.step)")
            }
        ) { p in
            reporter.training(p, batchSize: batchSize)
        }
        guard let result = finished else {
            reporter.line("stopped; state saved in \(request.statePath); run the same command to continue")
            throw ExitCode(130)
        }
        let (studentNet, metadata, summary) = (result.student, result.metadata, result.summary)
        if let fit = result.classifierFit { reporter.line(fit.summary) }
        if let epoch = summary.restoredEpoch, let best = summary.robust[epoch], let last = summary.robust.last ?? nil {
            reporter.line(
                String(
                    format: "the probe fell from %.1f%% (epoch %d) to %.1f%% (epoch %d): kept epoch %d's weights",
                    100 * best, epoch + 1, 100 * last, summary.robust.count, epoch + 1))
        }
        let projection = studentNet.config.projection.map { " (projection \(studentNet.bodyWidth) -> \($0))" } ?? ""
        reporter.line(
            String(
                format: "student test accuracy %.2f%% after %.1f s of training%@; saved %@",
                100 * summary.test.accuracy,
                summary.seconds, projection, out))
        var robust: Double?
        if !noEvaluate {
            robust = try runEvaluation(
                network: studentNet, path: out, metadata: metadata, test: data.test, settings: evalSettings,
                reportDirectory: report ?? Self.defaultReportDirectory(for: out), journal: evaluation.journal,
                reporter: reporter
            )
            .worstCase.robustAccuracy
        }
        if json {
            var object: [String: Any] = [
                "student": student, "width": width, "teacher": teacher, "teacher_sha256": request.teacherSHA256,
                "dataset": datasetName,
                "epochs": epochs, "seed": seed, "threads": Compute.threads, "objective": settings.objective.summary,
                "epsilon_ramp_epochs": epsilonRamp,
                "projection": studentNet.config.projection ?? 0, "test_accuracy": summary.test.accuracy,
                "seconds": summary.seconds,
                "train_loss": summary.epochs.map(\.loss), "parameters": studentNet.parameterCount, "out": out,
            ]
            object["robust_accuracy"] = robust
            if summary.robust.contains(where: { $0 != nil }) {
                object["probe_robust"] = summary.robust.map { $0 ?? -1 }
                object["probe_restored_epoch"] = summary.restoredEpoch.map { $0 + 1 } ?? 0
            }
            object["classifier"] = source.rawValue
            if let fit = result.classifierFit {
                object["classifier_scale"] = fit.scale
                object["classifier_cosine"] = fit.meanCosine
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    /// The per-epoch probe the options ask for, or nil (no L-inf or L2 threat model, or 0 images).
    func makeProbe(threat: ThreatModel?, data: (train: Dataset, test: Dataset)) throws -> RobustProbe? {
        guard probeImages >= 0 else { throw ValidationError("--probe-images must be >= 0, got \(probeImages)") }
        let images: Dataset
        switch probeSplit {
        case "train": images = data.train
        case "test": images = data.test
        default: throw ValidationError("unknown --probe-split '\(probeSplit)'; use train or test")
        }
        let margin: Double?
        if probeRestore == "off" {
            margin = nil
        } else if let m = Double(probeRestore), m >= 0, m.isFinite {
            margin = m
        } else {
            throw ValidationError("--probe-restore '\(probeRestore)' is not a number of points >= 0 or 'off'")
        }
        guard probeImages > 0, let threat, let norm = threat.norm, threat.epsilon > 0 else { return nil }
        guard probeIterations >= 1 else {
            throw ValidationError("--probe-iterations must be >= 1, got \(probeIterations)")
        }
        var probe = RobustProbe.standard(
            images: images, count: probeImages, norm: norm, epsilon: Float(threat.epsilon),
            iterations: probeIterations)
        probe.restoreBelowBest = margin
        return probe
    }

    /// `dir/name.safetensors.zst` -> `dir/name.report`.
    static func defaultReportDirectory(for out: String) -> String {
        var base = out
        for suffix in [".zst", ".safetensors"] where base.hasSuffix(suffix) { base.removeLast(suffix.count) }
        return base + ".report"
    }
}
