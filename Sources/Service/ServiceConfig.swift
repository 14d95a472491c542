import Attacks
import Data
import Evaluation
import Foundation
import Models
import NN
import TOMLKit
import Training

/// The daemon's configuration (`/etc/rrmd/rrmd.toml`; documented key by key in
/// `Config/rrmd.toml` and `docs/service.md`), typed and validated in one place.
///
/// Every key is optional; an absent key takes its default. Unknown keys, wrong types and values
/// out of range are errors naming the file, the key, the value and what is allowed, because a
/// misspelt key silently falling back to a default would run hours of training with the wrong
/// settings. Relative paths are resolved against the configuration file's directory, so a file
/// means the same thing whatever directory rrmd is started from.
public struct ServiceConfig: Equatable, Sendable {
    /// The file this was loaded from (nil for built-in defaults).
    public var file: String?
    /// The spool root (absolute): `tmp/`, `incoming/`, `work/`, `done/`, `failed/` live inside.
    public var spool: String
    /// Worker threads for training and attacks (0: every core).
    public var threads: Int
    /// zstd level of the student checkpoints (1...19).
    public var zstdLevel: Int
    /// Where each dataset lives, by catalog name (`fashion-mnist`, `mnist`, `digits`, `cifar10`).
    public var datasets: [String: DatasetLocation]
    /// Which students to distil from each teacher.
    public var students: Students
    /// Robust Representation Matching training of each student.
    public var rrm: RRM
    /// How each student's robustness is measured.
    public var evaluation: EvaluationSettings
    /// Daemon behaviour: rescans, retries, input limits.
    public var service: ServiceSettings
    /// Where students run: in this process, or as Slurm batch jobs.
    public var executor: Executor

    /// The spool of a packaged installation (created by `Systemd/rrmd.tmpfiles`), used when a
    /// configuration file does not set `spool`.
    public static let systemSpool = "/var/spool/rrmd"
    /// The configuration file the systemd unit passes to `rrmd serve`.
    public static let systemPath = "/etc/rrmd/rrmd.toml"
    /// Largest configuration file read; a config is a few kilobytes, anything bigger is a mistake.
    public static let maxFileBytes = 1 << 20

    /// A dataset's directory and file format.
    public struct DatasetLocation: Equatable, Sendable {
        /// How the files are laid out.
        public var format: DatasetFormat
        /// The directory holding the files (absolute).
        public var path: String

        /// A location; see the properties.
        public init(format: DatasetFormat, path: String) {
            self.format = format
            self.path = path
        }
    }

    /// File formats the dataset readers understand.
    public enum DatasetFormat: String, CaseIterable, Equatable, Sendable {
        /// MNIST-style IDX files (plain or gzipped): fashion-mnist, mnist, digits.
        case idx
        /// CIFAR-10's binary batches.
        case cifar10
        /// CIFAR-100's binary train.bin/test.bin (`cifar100`: fine labels; `cifar100-coarse`: the 20 superclasses).
        case cifar100
        /// Images in class folders (`ImageFolder`), for a dataset named outside the catalog.
        case folder
        /// Whatever the dataset's name implies.
        case auto

        /// The format a catalog dataset is stored in.
        public static func natural(for dataset: String) -> DatasetFormat {
            switch dataset {
            case "cifar10": return .cifar10
            case "cifar100", "cifar100-coarse": return .cifar100
            default: return .idx
            }
        }
    }

    /// `[students]`: the architectures distilled from every teacher.
    public struct Students: Equatable, Sendable {
        /// Registry names (`ModelRegistry.names`), distilled in this order.
        public var architectures: [String]
        /// Width multiplier of every student (1: the architecture's standard width).
        public var width: Double

        /// Students; see the properties.
        public init(architectures: [String] = ["cnn-small", "resnet20"], width: Double = 1) {
            self.architectures = architectures
            self.width = width
        }
    }

    /// `[rrm]`: the student training recipe.
    public struct RRM: Equatable, Sendable {
        /// Passes over the training set.
        public var epochs: Int
        /// Images per SGD step.
        public var batchSize: Int
        /// Peak learning rate of the cosine schedule.
        public var learningRate: Double
        /// Weight of the cross-entropy term (the paper's lambda); nil for rrmd's choice,
        /// `RRMLoss.defaultXentWeight(replays:)` of the replays a student actually gets.
        public var xentWeight: Double?
        /// How student and teacher representations are compared.
        public var featureLoss: FeatureLoss
        /// Seed of initialisation, shuffling and augmentation.
        public var seed: UInt64
        /// Train on the first `limit` images only (nil: all); for quick runs and tests.
        public var limit: Int?
        /// Optimiser steps per batch (`RRMLoss.replays`; 1 is the paper's method). Replays after
        /// the first match at images pushed within the teacher's L-inf epsilon.
        public var replays: Int
        /// Where a batch's replays start (`RRMLoss.replayStart`).
        public var replayStart: ReplayStart
        /// Epochs over which the replays' radius grows from 0 to the teacher's epsilon
        /// (`TrainingSettings.epsilonRampEpochs`); 0 replays at the full radius from the start;
        /// nil for rrmd's choice, `RRMLoss.defaultEpsilonRamp` (see `replayRamp`).
        public var epsilonRamp: Double?
        /// Training images attacked after every epoch to follow a student's robustness
        /// (`RobustProbe`); 0 switches the probe and its guard off.
        public var probeImages: Int
        /// APGD-CE iterations of the probe.
        public var probeIterations: Int
        /// Points the last epoch's probe may lie under the best epoch's before the student keeps
        /// the best epoch's weights instead.
        public var probeRestore: Double

        /// The replays' ramp a student gets: `epsilonRamp`, else rrmd's choice for `replayStart`.
        public var replayRamp: Double {
            epsilonRamp ?? RRMLoss.defaultEpsilonRamp(replayStart: replayStart)
        }

        /// A recipe: the paper's CIFAR-10 L-inf loss and optimiser, 5 epochs of 4 replays per batch
        /// from a random start with cross-entropy weight 0.5, their radius ramped over the first
        /// epoch (docs/rrm-study.md: they carry over far more of the teacher's robustness than the
        /// paper's single step, at twice the cost of the former 10-epoch default).
        public init(
            epochs: Int = 5, batchSize: Int = 128, learningRate: Double = 0.1, xentWeight: Double? = nil,
            featureLoss: FeatureLoss = .cosine, seed: UInt64 = 0, limit: Int? = nil, replays: Int = 4,
            replayStart: ReplayStart = .random, epsilonRamp: Double? = nil, probeImages: Int = 512,
            probeIterations: Int = 50, probeRestore: Double = 10
        ) {
            self.epochs = epochs
            self.batchSize = batchSize
            self.learningRate = learningRate
            self.xentWeight = xentWeight
            self.featureLoss = featureLoss
            self.seed = seed
            self.limit = limit
            self.replays = replays
            self.replayStart = replayStart
            self.epsilonRamp = epsilonRamp
            self.probeImages = probeImages
            self.probeIterations = probeIterations
            self.probeRestore = probeRestore
        }

        /// The per-epoch probe of a student on `train`'s first images in the evaluation's threat
        /// model, or nil when `probeImages` is 0.
        public func probe(train: Dataset, norm: ThreatNorm, epsilon: Double) -> RobustProbe? {
            guard probeImages > 0 else { return nil }
            var probe = RobustProbe.standard(
                images: train, count: probeImages, norm: norm, epsilon: Float(epsilon), iterations: probeIterations)
            probe.restoreBelowBest = probeRestore
            return probe
        }

        /// The training settings of a student (SGD momentum 0.9, weight decay 5e-4, cosine
        /// schedule). Replays perturb within `linfEpsilon`, the teacher's L-inf budget; without
        /// one (an L2 teacher) the student is distilled with the paper's single step per batch.
        public func trainingSettings(linfEpsilon: Double?) -> TrainingSettings {
            let replaying = replays > 1 && linfEpsilon != nil
            let weight = xentWeight.map(Float.init) ?? RRMLoss.defaultXentWeight(replays: replaying ? replays : 1)
            var settings = TrainingSettings(
                epochs: epochs, batchSize: batchSize, learningRate: Float(learningRate), seed: seed,
                objective: .rrm(
                    RRMLoss(
                        xentWeight: weight, featureLoss: featureLoss,
                        replays: replaying ? replays : 1, replayEpsilon: replaying ? Float(linfEpsilon!) : 0,
                        replayStart: replaying ? replayStart : .clean)))
            // Without replays there is no radius to ramp.
            settings.epsilonRampEpochs = replaying ? replayRamp : 0
            return settings
        }
    }

    /// `[evaluation]`: the robustness measurement of every student.
    public struct EvaluationSettings: Equatable, Sendable {
        /// Attacks to run (`RobustnessSettings.knownAttacks`).
        public var attacks: [String]
        /// Evaluate the first `samples` test images (nil: the whole test split).
        public var samples: Int?
        /// APGD iterations per restart.
        public var iterations: Int
        /// Target classes of APGD-T.
        public var targetClasses: Int
        /// Images of the accuracy-against-epsilon sweep (0: no sweep).
        public var sweepSamples: Int
        /// Images of the more-iterations check (0: no check).
        public var checkSamples: Int
        /// The radius as written (`8/255`); nil: the teacher's own threat model.
        public var epsilon: String?

        /// Settings with `rrmd evaluate`'s defaults, except 1,000 samples (the whole test split
        /// would take hours per student on two cores).
        public init(
            attacks: [String] = RobustnessSettings().attacks, samples: Int? = 1000,
            iterations: Int = RobustnessSettings().iterations, targetClasses: Int = RobustnessSettings().targetClasses,
            sweepSamples: Int = RobustnessSettings().sweepSamples,
            checkSamples: Int = RobustnessSettings().checkSamples,
            epsilon: String? = nil
        ) {
            self.attacks = attacks
            self.samples = samples
            self.iterations = iterations
            self.targetClasses = targetClasses
            self.sweepSamples = sweepSamples
            self.checkSamples = checkSamples
            self.epsilon = epsilon
        }

        /// `epsilon` as a number (validated at load time, so non-nil whenever `epsilon` is).
        public var epsilonValue: Double? { epsilon.flatMap(parseEpsilon) }

        /// The evaluation of a student whose teacher was trained against `norm` at `teacherEpsilon`
        /// (written `teacherEpsilonText`); `epsilon`, when set, overrides the radius.
        public func robustnessSettings(
            norm: ThreatNorm, teacherEpsilon: Double, teacherEpsilonText: String,
            seed: UInt64
        ) -> RobustnessSettings {
            RobustnessSettings(
                norm: norm, epsilon: epsilonValue ?? teacherEpsilon, epsilonText: epsilon ?? teacherEpsilonText,
                attacks: attacks, samples: samples, iterations: iterations, targetClasses: targetClasses,
                sweepSamples: sweepSamples, checkSamples: checkSamples, seed: seed)
        }
    }

    /// `[service]`: how the daemon behaves around jobs.
    public struct ServiceSettings: Equatable, Sendable {
        /// Seconds between full rescans of `incoming/` (inotify's safety net).
        public var rescanSeconds: Int
        /// First wait after a transient failure (disk full, dataset not mounted), doubling per retry.
        public var retryInitialSeconds: Int
        /// Longest wait between retries.
        public var retryMaxSeconds: Int
        /// Teachers larger than this are rejected unread (bytes).
        public var maxTeacherBytes: Int

        /// Settings; see the properties.
        public init(
            rescanSeconds: Int = 60, retryInitialSeconds: Int = 30, retryMaxSeconds: Int = 1800,
            maxTeacherBytes: Int = 2 << 30
        ) {
            self.rescanSeconds = rescanSeconds
            self.retryInitialSeconds = retryInitialSeconds
            self.retryMaxSeconds = retryMaxSeconds
            self.maxTeacherBytes = maxTeacherBytes
        }
    }

    /// The defaults with the given spool.
    public init(spool: String, file: String? = nil) {
        self.file = file
        self.spool = spool
        threads = 0
        zstdLevel = 3
        datasets = ServiceConfig.defaultDatasets
        students = Students()
        rrm = RRM()
        evaluation = EvaluationSettings()
        service = ServiceSettings()
        executor = Executor()
    }

    /// The defaults for running from a source checkout at `checkout`: the spool is the checkout's
    /// `Spool/` directory (resolved to an absolute path).
    public static func `default`(forCheckout checkout: String) -> ServiceConfig {
        ServiceConfig(spool: resolve("Spool", against: absolute(checkout)))
    }

    /// Datasets known without configuration: Fashion-MNIST where Debian's dataset-fashion-mnist puts it.
    public static let defaultDatasets = [
        "fashion-mnist": DatasetLocation(format: .idx, path: "/usr/share/datasets/fashion-mnist")
    ]

    // MARK: - Loading

    /// Reads and validates the file at `path`. Throws `ServiceConfigError`.
    public static func load(path: String) throws -> ServiceConfig {
        let file = absolute(path)
        let text: String
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            if let size = attributes[.size] as? NSNumber, size.intValue > maxFileBytes {
                throw ServiceConfigError(
                    kind: .unreadable, file: file, key: nil, value: nil,
                    expected: "it is \(size.intValue) bytes; a configuration is at most \(maxFileBytes)")
            }
            guard let data = FileManager.default.contents(atPath: file) else { throw CocoaError(.fileReadUnknown) }
            guard let decoded = String(data: data, encoding: .utf8) else {
                throw ServiceConfigError(
                    kind: .unreadable, file: file, key: nil, value: nil, expected: "it is not UTF-8 text")
            }
            text = decoded
        } catch let error as ServiceConfigError {
            throw error
        } catch {
            let reason =
                FileManager.default.fileExists(atPath: file)
                ? "permission denied or not a regular file"
                : "no such file; copy Config/rrmd.toml from the source tree there, or pass --config with another file"
            throw ServiceConfigError(kind: .unreadable, file: file, key: nil, value: nil, expected: reason)
        }
        return try parse(text, file: file)
    }

    /// Validates TOML `text` as if read from `file` (relative paths resolve against its directory).
    public static func parse(_ text: String, file: String) throws -> ServiceConfig {
        let file = absolute(file)
        // TOMLKit 0.6.0 never frees a parsed document (its tables have no deinit): each load leaks
        // a few kilobytes. Acceptable for a file read at start-up and on `systemctl reload`.
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ServiceConfigError(
                kind: .syntax, file: file, key: nil, value: nil,
                expected: "line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")
        }
        let baseDirectory = (file as NSString).deletingLastPathComponent
        let top = TOMLTableReader(table: root, path: "", file: file)
        try top.rejectUnknownKeys([
            "spool", "threads", "zstd_level", "datasets", "students", "rrm", "evaluation", "service", "executor",
        ])

        var config = ServiceConfig(spool: systemSpool, file: file)
        if let spool = try top.optionalString("spool") {
            guard !spool.isEmpty else { throw top.invalid("spool", "\"\"", "a directory path") }
            config.spool = resolve(spool, against: baseDirectory)
        }
        config.threads = try top.int("threads", default: 0, range: 0...256, unit: "(0: every core)")
        config.zstdLevel = try top.int("zstd_level", default: 3, range: 1...19)
        config.datasets = try readDatasets(top, base: baseDirectory)
        if let t = try top.subtable("students") { config.students = try readStudents(t) }
        if let t = try top.subtable("rrm") { config.rrm = try readRRM(t) }
        if let t = try top.subtable("evaluation") { config.evaluation = try readEvaluation(t) }
        if let t = try top.subtable("service") { config.service = try readService(t) }
        if let t = try top.subtable("executor") {
            config.executor = try readExecutor(t, base: baseDirectory)
            if config.executor.kind == .slurm, let shared = config.executor.slurm.sharedDirectory,
                !(config.spool + "/").hasPrefix(shared.hasSuffix("/") ? shared : shared + "/")
            {
                throw ServiceConfigError(
                    kind: .invalidValue, file: file, key: "executor.slurm.shared_directory", value: "\"\(shared)\"",
                    expected:
                        "a directory holding the spool (\(config.spool)): Slurm jobs read their teacher and write "
                        + "their students in the spool's work/")
            }
        }
        return config
    }

    private static func readDatasets(_ top: TOMLTableReader, base: String) throws -> [String: DatasetLocation] {
        var out = defaultDatasets
        guard let all = try top.subtable("datasets") else { return out }
        let known = DatasetCatalog.knownNames
        for name in all.table.keys.sorted() {
            guard let entry = try all.subtable(name) else { continue }
            try entry.rejectUnknownKeys(["format", "path"])
            var format = try entry.choice("format", default: DatasetFormat.auto, choices: DatasetFormat.allCases)
            // A name outside the catalog is the operator's own image folder; it must say so.
            guard known.contains(name) || format == .folder else {
                throw ServiceConfigError(
                    kind: .unknownKey, file: top.file, key: all.key(name), value: nil,
                    expected:
                        "a catalog dataset (\(known.joined(separator: ", "))), or format = \"folder\" for images in "
                        + "class folders")
            }
            if format == .folder {
                guard !known.contains(name),
                    name.range(of: "^[a-z0-9][a-z0-9_.-]*$", options: .regularExpression) != nil
                else {
                    throw entry.invalid(
                        "format", "\"folder\"",
                        "a catalog format for \(name), or a dataset name of lower-case letters, digits, '.', '_', '-' "
                            + "outside the catalog for an image folder")
                }
                guard let p = try entry.optionalString("path"), !p.isEmpty else {
                    throw ServiceConfigError(
                        kind: .invalidValue, file: top.file, key: entry.key("path"), value: nil,
                        expected: "the image folder's root (ROOT/train/<class>/..., ROOT/test/<class>/...)")
                }
                out[name] = DatasetLocation(format: .folder, path: resolve(p, against: base))
                continue
            }
            let natural = DatasetFormat.natural(for: name)
            if format == .auto { format = natural }
            guard format == natural else {
                throw entry.invalid(
                    "format", entry.quote(format.rawValue),
                    "\"\(natural.rawValue)\" or \"auto\" (\(name) is stored as \(natural.rawValue))")
            }
            let path: String
            if let p = try entry.optionalString("path") {
                guard !p.isEmpty else {
                    throw entry.invalid("path", "\"\"", "the directory holding the dataset's files")
                }
                path = resolve(p, against: base)
            } else if let fallback = defaultDatasets[name] {
                path = fallback.path
            } else {
                throw ServiceConfigError(
                    kind: .invalidValue, file: top.file, key: entry.key("path"), value: nil,
                    expected: "the directory holding \(name)'s files (this key is required for \(name))")
            }
            out[name] = DatasetLocation(format: format, path: path)
        }
        return out
    }

    private static func readStudents(_ t: TOMLTableReader) throws -> Students {
        try t.rejectUnknownKeys(["architectures", "width"])
        let d = Students()
        return Students(
            architectures: try t.stringList(
                "architectures", default: d.architectures, allowed: ModelRegistry.names,
                alsoAllowed: ModelRegistry.isKnown),
            width: try t.double("width", default: d.width, range: 0.125...8))
    }

    private static func readRRM(_ t: TOMLTableReader) throws -> RRM {
        try t.rejectUnknownKeys([
            "epochs", "batch_size", "learning_rate", "xent_weight", "feature_loss", "seed", "limit", "replays",
            "replay_start", "epsilon_ramp", "probe_images", "probe_iterations", "probe_restore",
        ])
        let d = RRM()
        let rrm = RRM(
            epochs: try t.int("epochs", default: d.epochs, range: 1...1000),
            // BatchNorm needs two samples per batch.
            batchSize: try t.int("batch_size", default: d.batchSize, range: 2...4096),
            learningRate: try t.double("learning_rate", default: d.learningRate, range: 1e-6...10),
            xentWeight: try t.optionalDouble("xent_weight", range: 0...100),
            featureLoss: try t.choice("feature_loss", default: d.featureLoss, choices: FeatureLoss.allCases),
            seed: UInt64(try t.int("seed", default: Int(d.seed), range: 0...Int.max)),
            limit: try t.optionalInt("limit", range: 1...Int.max, unit: "images"),
            replays: try t.int("replays", default: d.replays, range: 1...16),
            replayStart: try t.choice("replay_start", default: d.replayStart, choices: ReplayStart.allCases),
            epsilonRamp: try t.optionalDouble("epsilon_ramp", range: 0...1000),
            probeImages: try t.int("probe_images", default: d.probeImages, range: 0...100_000),
            probeIterations: try t.int("probe_iterations", default: d.probeIterations, range: 1...1000),
            probeRestore: try t.double("probe_restore", default: d.probeRestore, range: 0...100))
        // The ramp is a share of the run, so its bound is another key's value.
        if let ramp = rrm.epsilonRamp, ramp > Double(rrm.epochs) {
            throw ServiceConfigError(
                kind: .outOfRange, file: t.file, key: t.key("epsilon_ramp"), value: String(ramp),
                expected: "a number of epochs in 0...epochs (\(rrm.epochs)): the ramp is part of the run")
        }
        return rrm
    }

    private static func readEvaluation(_ t: TOMLTableReader) throws -> EvaluationSettings {
        try t.rejectUnknownKeys([
            "attacks", "samples", "iterations", "target_classes", "sweep_samples", "check_samples", "epsilon",
        ])
        let d = EvaluationSettings()
        var samples = d.samples
        if let n = try t.optionalInt("samples", range: 0...Int.max, unit: "images (0: the whole test split)") {
            samples = n == 0 ? nil : n
        }
        var epsilon: String? = nil
        if let value = t.table["epsilon"] {
            let expected = "a positive number or fraction such as \"8/255\" or 0.5"
            if let s = value.string {
                epsilon = s.trimmingCharacters(in: .whitespaces)
            } else if let x = value.double {
                epsilon = String(x)
            } else if let n = value.int {
                epsilon = String(n)
            } else {
                throw t.wrongType("epsilon", value, expected)
            }
            guard let e = parseEpsilon(epsilon!), e > 0 else {
                throw ServiceConfigError(
                    kind: .outOfRange, file: t.file, key: t.key("epsilon"), value: t.render(value), expected: expected)
            }
        }
        return EvaluationSettings(
            attacks: try t.stringList("attacks", default: d.attacks, allowed: RobustnessSettings.knownAttacks),
            samples: samples,
            iterations: try t.int("iterations", default: d.iterations, range: 1...10_000),
            targetClasses: try t.int(
                "target_classes", default: d.targetClasses, range: 1...999, unit: "(at most classes - 1)"),
            sweepSamples: try t.int(
                "sweep_samples", default: d.sweepSamples, range: 0...Int.max, unit: "images (0: no sweep)"),
            checkSamples: try t.int(
                "check_samples", default: d.checkSamples, range: 0...Int.max, unit: "images (0: no check)"),
            epsilon: epsilon)
    }

    private static func readService(_ t: TOMLTableReader) throws -> ServiceSettings {
        try t.rejectUnknownKeys(["rescan_seconds", "retry_initial_seconds", "retry_max_seconds", "max_teacher_bytes"])
        let d = ServiceSettings()
        let s = ServiceSettings(
            rescanSeconds: try t.int("rescan_seconds", default: d.rescanSeconds, range: 1...86_400, unit: "seconds"),
            retryInitialSeconds: try t.int(
                "retry_initial_seconds", default: d.retryInitialSeconds, range: 1...3600, unit: "seconds"),
            retryMaxSeconds: try t.int(
                "retry_max_seconds", default: d.retryMaxSeconds, range: 1...86_400, unit: "seconds"),
            maxTeacherBytes: try t.int(
                "max_teacher_bytes", default: d.maxTeacherBytes, range: (1 << 20)...(1 << 40), unit: "bytes"))
        guard s.retryMaxSeconds >= s.retryInitialSeconds else {
            throw ServiceConfigError(
                kind: .outOfRange, file: t.file, key: t.key("retry_max_seconds"), value: String(s.retryMaxSeconds),
                expected: "at least retry_initial_seconds (\(s.retryInitialSeconds)) ... 86400 seconds")
        }
        return s
    }

    // MARK: - Paths

    /// `path` made absolute against the current directory, `.` and `..` removed.
    static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// `path` if absolute, else `path` inside `directory`; normalised either way.
    static func resolve(_ path: String, against directory: String) -> String {
        if path.hasPrefix("/") { return URL(fileURLWithPath: path).standardizedFileURL.path }
        return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: directory, isDirectory: true))
            .standardizedFileURL.path
    }
}
