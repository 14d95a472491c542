import ArgumentParser
import Checkpoint
import Data
import Evaluation
import Foundation
import Kernels
import Models
import NN
import Training

/// `rrmd distill`: Robust Representation Matching from a robust teacher into a student of
/// another architecture, then the robustness protocol on the student.
struct DistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Distil a robust student from a robust teacher with Robust Representation Matching, then evaluate it.",
        discussion: """
            The loss is xent-weight * CE + mean(1 - cos(z_student, z_teacher)) on penultimate representations (or the relative \
            L2 distance with --feature-loss l2); the teacher is frozen in inference mode and sees the same clean augmented \
            batch; no adversarial examples are made. A student whose representation width differs from the teacher's gets a \
            trained linear projection (saved as projection.weight). Defaults are the paper's: SGD momentum 0.9, weight decay \
            5e-4, lr 0.1 with per-iteration cosine annealing to 1e-6, batch 128, 48 epochs. The run saves its state at every \
            epoch end and on Ctrl-C in OUT.state and continues from it when run again; the report goes next to the student.
            Architectures: \(ModelRegistry.names.joined(separator: ", ")).
            """)

    @Option(help: "Teacher checkpoint (.safetensors or .safetensors.zst), ideally adversarially trained.") var teacher: String
    @Option(help: "Student architecture.") var student: String
    @Option(help: "Dataset (default: the teacher's).") var dataset: String?
    @Option(name: .customLong("data-dir"), help: "Directory holding the dataset files.") var dataDir: String?
    @Option(help: "Output student checkpoint (.safetensors.zst compresses).") var out: String
    @Option(help: "Epochs.") var epochs = 48
    @Option(name: .customLong("xent-weight"), help: "Weight of the cross-entropy term (the paper: 0.005 for L-inf, 5e-5 for L2 on CIFAR-10).") var xentWeight: Float = 0.005
    @Option(name: .customLong("feature-loss"), help: "cosine or l2 (relative L2 distance).") var featureLoss = "cosine"
    @Option(help: "Width multiplier of the student.") var width = 1.0
    @Option(name: .customLong("batch-size"), help: "Images per step.") var batchSize = 128
    @Option(help: "Peak learning rate.") var lr: Float = 0.1
    @Option(help: "Random seed (initialisation, shuffling, augmentation).") var seed: UInt64 = 0
    @Option(help: "Compute threads (default: all cores).") var threads = 0
    @Option(help: "Use only the first N training and test samples (quick runs).") var limit: Int?
    @Option(help: "Resumable state file (default: OUT.state; removed when the student is saved).") var state: String?
    @Option(help: "Report directory (default: OUT without its extension, plus .report).") var report: String?
    @Flag(name: .customLong("no-evaluate"), help: "Skip the robustness evaluation.") var noEvaluate = false
    @OptionGroup var evaluation: EvaluationOptions

    func run() throws {
        Compute.configure(threads: threads)
        guard let loss = FeatureLoss(rawValue: featureLoss) else { throw ValidationError("unknown --feature-loss '\(featureLoss)'; use cosine or l2") }
        let reporter = ProgressReporter()
        let teacherModel = try ModelLoader.load(path: teacher, dataset: dataset)
        let tmeta = teacherModel.metadata
        let datasetName = dataset ?? tmeta.dataset
        let data = try DatasetCatalog.load(datasetName, directory: dataDir, limit: limit)
        guard data.train.imageShape == tmeta.config.inputShape, data.train.numClasses == tmeta.config.numClasses else {
            throw CommandFailure("teacher \(teacher) takes \(tmeta.config.inputShape) images and \(tmeta.config.numClasses) classes, but \(datasetName) has \(data.train.imageShape) and \(data.train.numClasses); distil on the teacher's dataset (\(tmeta.dataset))")
        }
        let teacherSHA = try SHA256.hex(contentsOfFile: teacher)
        let studentNet = try makeStudent(teacher: teacherModel.network)
        let settings = TrainingSettings(
            epochs: epochs, batchSize: batchSize, learningRate: lr, schedule: .cosine,
            sgd: .init(momentum: 0.9, weightDecay: 5e-4), cropPadding: max(data.train.height, data.train.width) / 8,
            horizontalFlip: true, seed: seed, objective: .rrm(RRMLoss(xentWeight: xentWeight, featureLoss: loss)))
        if let problem = settings.problem() { throw ValidationError(problem) }
        let threat = ThreatModel(tmeta.threatModel)
        let evalSettings = try evaluation.settings(threat: threat)
        if !noEvaluate, let problem = evalSettings.problem(numClasses: data.test.numClasses) { throw ValidationError(problem) }
        if threat?.norm == nil {
            reporter.line("warning: the teacher's metadata declares no threat model (rrm.threat_model = \(tmeta.threatModel)); RRM transfers only the robustness the teacher has")
        }

        let statePath = state ?? out + ".state"
        let trainer = Trainer(model: studentNet, settings: settings, teacher: teacherModel.network)
        StopSignal.install()
        if FileManager.default.fileExists(atPath: statePath) {
            try trainer.restoreState(from: statePath)
            reporter.line("resuming from \(statePath) at epoch \(trainer.position.epoch + 1), step \(trainer.position.step)")
        }
        let projection = studentNet.config.projection.map { ", projection \($0)" } ?? ""
        reporter.line("distilling \(student)\(projection) (\(studentNet.parameterCount) parameters) from \(tmeta.architecture) (\(tmeta.trainedBy ?? "unknown training"), \(tmeta.threatModel)) on \(datasetName): \(data.train.count) images, \(epochs) epochs, \(settings.objective.summary), \(Compute.threads) threads")
        let finished = try trainer.run(train: data.train, test: data.test, shouldStop: { StopSignal.requested },
                                       epochEnd: { try $0.saveState(to: statePath) }) { p in
            let label = "epoch \(p.epoch + 1)/\(p.epochs)"
            if p.epochDone {
                reporter.line(String(format: "%@: loss %.4f, train accuracy %.2f%%, test accuracy %.2f%%, %.0f images/s",
                                     label, p.loss, 100 * p.accuracy, 100 * (p.testAccuracy ?? 0), p.imagesPerSecond))
            } else {
                reporter.update(label: label, done: p.step, total: p.stepsPerEpoch, rate: p.imagesPerSecond / Double(batchSize),
                                unit: "steps", detail: String(format: "loss %.4f acc %.2f%% lr %.4g", p.loss, 100 * p.accuracy, p.learningRate))
            }
        }
        guard let summary = finished else {
            try trainer.saveState(to: statePath)
            reporter.line("stopped at epoch \(trainer.position.epoch + 1), step \(trainer.position.step); state saved in \(statePath); run the same command to continue")
            throw ExitCode(130)
        }
        let recipe = "\(settings.objective.summary) from \(tmeta.architecture) \(teacherSHA.prefix(12)); sgd lr=\(lr) momentum=0.9 wd=0.0005 cosine, \(epochs) epochs, batch \(batchSize)"
        let metadata = ModelMetadata(model: studentNet, dataset: data.train.name, threatModel: tmeta.threatModel, trainedBy: "rrm",
                                     training: recipe, seed: seed, teacherSHA256: teacherSHA, producer: "rrmd \(RRMDVersion.string)")
        try SafeTensors(studentNet.stateTensors(), metadata: metadata.dictionary)
            .write(toFile: out, compression: out.hasSuffix(".zst") ? .zstd() : .none)
        try? FileManager.default.removeItem(atPath: statePath)
        reporter.line(String(format: "student test accuracy %.2f%% after %.1f s of training; saved %@", 100 * summary.test.accuracy, summary.seconds, out))
        if !noEvaluate {
            _ = try runEvaluation(network: studentNet, path: out, metadata: metadata, test: data.test, settings: evalSettings,
                                  reportDirectory: report ?? Self.defaultReportDirectory(for: out), reporter: reporter)
        }
    }

    /// The student network: the teacher's input geometry, classes and normalisation, and a
    /// projection to the teacher's representation width when its own differs.
    private func makeStudent(teacher: Network) throws -> Network {
        var config = teacher.config
        config.widthMultiplier = width
        config.projection = nil
        let natural = try ModelRegistry.make(student, config: config, seed: seed)
        if natural.representationWidth == teacher.representationWidth { return natural }
        config.projection = teacher.representationWidth
        return try ModelRegistry.make(student, config: config, seed: seed)
    }

    /// `dir/name.safetensors.zst` -> `dir/name.report`.
    static func defaultReportDirectory(for out: String) -> String {
        var base = out
        for suffix in [".zst", ".safetensors"] where base.hasSuffix(suffix) { base.removeLast(suffix.count) }
        return base + ".report"
    }
}
