import Checkpoint
import Data
import Foundation
import ModelIO
import Models
import NN
import Training

/// One student to distil: everything `Distiller.run` needs, from the command line or a spool job.
public struct DistillationRequest {
    /// The teacher as loaded, the path it came from and the SHA-256 of its bytes.
    public var teacher: LoadedModel
    public var teacherPath: String
    public var teacherSHA256: String
    /// Registry architecture and width multiplier of the student.
    public var student: String
    public var width: Double
    /// Training and test split of the teacher's dataset.
    public var train: Dataset
    public var test: Dataset
    /// Optimiser, schedule, epochs, seed; the objective must be `.rrm`.
    public var settings: TrainingSettings
    /// Resumable state (saved at epoch ends and on stop; removed once the student is saved).
    public var statePath: String
    /// The student checkpoint to write, and its zstd level when the name ends in `.zst`.
    public var outPath: String
    public var zstdLevel: Int
    /// What goes into the checkpoint's `rrm.producer`.
    public var producer: String
    /// When the student gets a projection head, and whether it has a bias.
    public var head = StudentHead()
    /// The robustness check after every epoch and its guard (`RobustProbe`); nil runs without.
    public var probe: RobustProbe?

    /// A request; see the properties.
    public init(
        teacher: LoadedModel, teacherPath: String, teacherSHA256: String, student: String, width: Double,
        train: Dataset, test: Dataset, settings: TrainingSettings, statePath: String, outPath: String,
        zstdLevel: Int = SafeTensors.Compression.defaultZstdLevel, producer: String
    ) {
        self.teacher = teacher
        self.teacherPath = teacherPath
        self.teacherSHA256 = teacherSHA256
        self.student = student
        self.width = width
        self.train = train
        self.test = test
        self.settings = settings
        self.statePath = statePath
        self.outPath = outPath
        self.zstdLevel = zstdLevel
        self.producer = producer
    }
}

/// The projection head between a student's body and its classifier, and where the classifier
/// comes from.
public struct StudentHead: Equatable, Sendable {
    /// Where a distilled student's classifier comes from.
    public enum Classifier: String, CaseIterable, Sendable {
        /// Its own, trained with the student (the paper's method).
        case own
        /// The teacher's, scaled onto the student's representation after training
        /// (`TeacherClassifier`).
        case teacher
    }

    /// `auto`: a projection only when the student's width differs from the teacher's (rrmd's
    /// rule, design.md §1); `always`: one even when the widths are equal.
    public var always: Bool
    /// Whether the projection has a bias (the paper's extra layer in ResNet-50 had one).
    public var bias: Bool
    /// Where the classifier comes from.
    public var classifier: Classifier

    /// rrmd's default: a projection without bias, only where the widths differ; the student's
    /// own classifier.
    public init(always: Bool = false, bias: Bool = false, classifier: Classifier = .own) {
        self.always = always
        self.bias = bias
        self.classifier = classifier
    }
}

/// What a finished distillation produced.
public struct DistillationResult {
    /// The trained student (in memory, ready to evaluate) and the metadata saved with it.
    public var student: Network
    public var metadata: ModelMetadata
    /// The run's summary (test accuracy, per-epoch loss, wall time over every session); the test
    /// accuracy is the saved student's, with the teacher's classifier when it took it.
    public var summary: TrainingSummary
    /// How the teacher's classifier was fitted, when the student took it.
    public var classifierFit: TeacherClassifier.Fit?
}

/// Robust Representation Matching from a request to a saved student: the shared core of
/// `rrmd distill` and the daemon's jobs.
public enum Distiller {
    /// Problems that make a teacher and dataset unusable together, as a sentence saying what to do.
    public static func compatibilityProblem(teacher: ModelMetadata, train: Dataset) -> String? {
        if train.imageShape != teacher.config.inputShape || train.numClasses != teacher.config.numClasses {
            return
                "the teacher takes \(teacher.config.inputShape) images and \(teacher.config.numClasses) classes, but "
                + "\(train.name) has \(train.imageShape) and \(train.numClasses); distil on the teacher's dataset "
                + "(\(teacher.dataset))"
        }
        return nil
    }

    /// The student network: the teacher's input geometry, classes and normalisation, and a
    /// projection to the teacher's representation width when its own differs.
    public static func makeStudent(
        _ arch: String, width: Double, teacher: Network, seed: UInt64,
        head: StudentHead = StudentHead()
    ) throws -> Network {
        var config = teacher.config
        config.widthMultiplier = width
        config.projection = nil
        config.projectionBias = false
        let own = try ModelRegistry.representationWidth(arch, config: config)
        if own != teacher.representationWidth || head.always {
            config.projection = teacher.representationWidth
            config.projectionBias = head.bias
        }
        return try ModelRegistry.make(arch, config: config, seed: seed)
    }

    /// Trains the student (continuing from `statePath` when it exists) and saves it with its
    /// metadata. Returns nil when `shouldStop` ended the run early; the state is then saved.
    /// A state file from a run with other settings is an error, unless `discardForeignState`
    /// (the daemon after its configuration changed), which reports it through `discarded` and
    /// starts the student afresh.
    public static func run(
        _ r: DistillationRequest, shouldStop: () -> Bool = { false },
        discardForeignState: Bool = false, discarded: (String) -> Void = { _ in },
        resumed: (TrainingPosition) -> Void = { _ in },
        progress: (TrainingProgress) -> Void = { _ in }
    ) throws -> DistillationResult? {
        guard case .rrm = r.settings.objective else {
            preconditionFailure("Distiller: the objective must be RRM, got \(r.settings.objective.methodName)")
        }
        let student = try makeStudent(
            r.student, width: r.width, teacher: r.teacher.network, seed: r.settings.seed, head: r.head)
        var trainer = Trainer(model: student, settings: r.settings, teacher: r.teacher.network)
        trainer.probe = r.probe
        if FileManager.default.fileExists(atPath: r.statePath) {
            do {
                try trainer.restoreState(from: r.statePath)
                resumed(trainer.position)
            } catch let error as TrainingStateError where discardForeignState {
                discarded("\(error)")
                try FileManager.default.removeItem(atPath: r.statePath)
                // restoreState may have loaded weights before refusing; start from a clean student.
                trainer = Trainer(
                    model: try makeStudent(
                        r.student, width: r.width, teacher: r.teacher.network, seed: r.settings.seed, head: r.head),
                    settings: r.settings, teacher: r.teacher.network)
                trainer.probe = r.probe
            }
        }
        // A batch size or width too large for this machine is refused here, with a reason.
        try trainer.preflight(trainingSamples: r.train.count)
        guard
            var summary = try trainer.run(
                train: r.train, test: r.test, shouldStop: shouldStop,
                epochEnd: { try $0.saveState(to: r.statePath) }, progress: progress)
        else {
            try trainer.saveState(to: r.statePath)
            return nil
        }
        let tmeta = r.teacher.metadata
        let s = r.settings
        var recipe =
            "\(s.objective.summary)\(s.epsilonRampEpochs > 0 ? " epsilon-ramp=\(s.epsilonRampEpochs) epochs" : "") "
            + "from \(tmeta.architecture) \(r.teacherSHA256.prefix(12)); sgd "
            + "lr=\(s.learningRate) momentum=\(s.sgd.momentum) wd=\(s.sgd.weightDecay) \(s.schedule.rawValue), "
            + "\(s.epochs) epochs, batch \(s.batchSize)"
        if let epoch = summary.restoredEpoch {
            recipe += "; weights of epoch \(epoch + 1), the most robust under the per-epoch probe"
        }
        var fit: TeacherClassifier.Fit?
        if r.head.classifier == .teacher {
            let f = TeacherClassifier.adopt(student: trainer.model, teacher: r.teacher.network, data: r.train)
            summary.test = evaluateAccuracy(trainer.model, on: r.test)
            recipe += "; " + f.summary
            fit = f
        }
        let metadata = ModelMetadata(
            model: trainer.model, dataset: r.train.name, threatModel: tmeta.threatModel, trainedBy: "rrm",
            training: recipe, seed: s.seed, teacherSHA256: r.teacherSHA256, producer: r.producer)
        try SafeTensors(trainer.model.stateTensors(), metadata: metadata.dictionary)
            .write(toFile: r.outPath, compression: .forPath(r.outPath, level: r.zstdLevel))
        try? FileManager.default.removeItem(atPath: r.statePath)
        return DistillationResult(student: trainer.model, metadata: metadata, summary: summary, classifierFit: fit)
    }
}
