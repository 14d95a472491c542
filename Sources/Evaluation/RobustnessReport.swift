import Attacks
import Foundation

/// Everything `rrmd evaluate` measured about one model, as plain data that the JSON, Markdown
/// and SVG writers render; its JSON form (`report.json`, schema `rrmd.report/1`) is a contract.
///
/// Accuracies are fractions in [0, 1]; times are seconds. Optional parts encode as JSON `null`
/// rather than disappearing, so that every key of the schema is always present for programs.
public struct RobustnessReport: Codable, Equatable, Sendable {
    /// The schema this code writes; bump the number on any incompatible change of keys or units.
    public static let currentSchema = "rrmd.report/1"

    /// Schema identifier, `rrmd.report/1`.
    public var schema: String
    /// The model that was evaluated.
    public var model: Model
    /// The samples it was evaluated on.
    public var data: Dataset
    /// The perturbation budget of the attacks.
    public var threat: Threat
    /// Accuracy without attack.
    public var clean: Clean
    /// One entry per attack that ran, in the order they ran.
    public var attacks: [Attack]
    /// Accuracy when every example meets the attack that broke it, if any did.
    public var worstCase: WorstCase
    /// Accuracy against a growing epsilon, if the sweep ran.
    public var sweep: Sweep?
    /// Accuracy against a growing number of attack iterations, if the check ran.
    public var iterationsCheck: IterationsCheck?
    /// Clean and worst-case accuracy of each class.
    public var perClass: [ClassResult]
    /// Gradient-masking sanity checks, usually `MaskingChecks.run(report)`.
    public var checks: [Check]
    /// Where the time went.
    public var timing: Timing
    /// When the report was made, ISO-8601 in UTC (`2025-01-31T12:00:00Z`).
    public var created: String
    /// Version of the rrmd that made the report.
    public var rrmdVersion: String

    /// Makes a report; `schema` defaults to the one this code writes.
    public init(
        schema: String = RobustnessReport.currentSchema,
        model: Model,
        data: Dataset,
        threat: Threat,
        clean: Clean,
        attacks: [Attack],
        worstCase: WorstCase,
        sweep: Sweep? = nil,
        iterationsCheck: IterationsCheck? = nil,
        perClass: [ClassResult],
        checks: [Check] = [],
        timing: Timing,
        created: String,
        rrmdVersion: String
    ) {
        self.schema = schema
        self.model = model
        self.data = data
        self.threat = threat
        self.clean = clean
        self.attacks = attacks
        self.worstCase = worstCase
        self.sweep = sweep
        self.iterationsCheck = iterationsCheck
        self.perClass = perClass
        self.checks = checks
        self.timing = timing
        self.created = created
        self.rrmdVersion = rrmdVersion
    }

    enum CodingKeys: String, CodingKey {
        case schema, model, data, threat, clean, attacks
        case worstCase = "worst_case"
        case sweep
        case iterationsCheck = "iterations_check"
        case perClass = "per_class"
        case checks, timing, created
        case rrmdVersion = "rrmd_version"
    }

    /// Encodes every key, absent optionals as `null`.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(schema, forKey: .schema)
        try c.encode(model, forKey: .model)
        try c.encode(data, forKey: .data)
        try c.encode(threat, forKey: .threat)
        try c.encode(clean, forKey: .clean)
        try c.encode(attacks, forKey: .attacks)
        try c.encode(worstCase, forKey: .worstCase)
        try c.encode(sweep, forKey: .sweep)
        try c.encode(iterationsCheck, forKey: .iterationsCheck)
        try c.encode(perClass, forKey: .perClass)
        try c.encode(checks, forKey: .checks)
        try c.encode(timing, forKey: .timing)
        try c.encode(created, forKey: .created)
        try c.encode(rrmdVersion, forKey: .rrmdVersion)
    }

    /// `date` as the report's `created` string: ISO-8601, UTC, whole seconds.
    public static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}

extension RobustnessReport {
    /// The evaluated checkpoint and what its metadata says about it.
    public struct Model: Codable, Equatable, Sendable {
        /// Path of the checkpoint file as given to rrmd.
        public var path: String
        /// SHA-256 of the checkpoint file's bytes, 64 lowercase hex digits.
        public var sha256: String
        /// Registry architecture, e.g. `resnet20`.
        public var arch: String
        /// Width multiplier of the architecture.
        public var width: Double
        /// Dataset the model was made for, e.g. `cifar10`.
        public var dataset: String
        /// Number of trainable parameters.
        public var parameters: Int
        /// How the model was trained: `natural`, `pgd-at`, `fgsm-rs`, `free-at`, `rrm`, `external`.
        public var trainedBy: String
        /// Threat model the checkpoint claims (`rrm.threat_model`, e.g. `linf:8/255`), if any.
        public var threatModel: String?
        /// What wrote the checkpoint (`rrm.producer`), if known.
        public var producer: String?

        /// Makes a model description.
        public init(
            path: String, sha256: String, arch: String, width: Double, dataset: String,
            parameters: Int, trainedBy: String, threatModel: String? = nil, producer: String? = nil
        ) {
            self.path = path
            self.sha256 = sha256
            self.arch = arch
            self.width = width
            self.dataset = dataset
            self.parameters = parameters
            self.trainedBy = trainedBy
            self.threatModel = threatModel
            self.producer = producer
        }

        enum CodingKeys: String, CodingKey {
            case path, sha256, arch, width, dataset, parameters
            case trainedBy = "trained_by"
            case threatModel = "threat_model"
            case producer
        }

        /// Encodes every key, absent optionals as `null`.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(path, forKey: .path)
            try c.encode(sha256, forKey: .sha256)
            try c.encode(arch, forKey: .arch)
            try c.encode(width, forKey: .width)
            try c.encode(dataset, forKey: .dataset)
            try c.encode(parameters, forKey: .parameters)
            try c.encode(trainedBy, forKey: .trainedBy)
            try c.encode(threatModel, forKey: .threatModel)
            try c.encode(producer, forKey: .producer)
        }
    }

    /// The evaluation samples. (Not called `Data`, which would hide Foundation's inside the report.)
    public struct Dataset: Codable, Equatable, Sendable {
        /// Dataset name, e.g. `cifar10`.
        public var name: String
        /// Split the samples came from, normally `test`.
        public var split: String
        /// Number of samples every number of the report (except sweep and iterations check) is over.
        public var samples: Int
        /// Number of classes of the model's output.
        public var numClasses: Int
        /// Human names of the classes, indexed by class, if the dataset has them.
        public var classNames: [String]?
        /// Seed of the sample selection and of every random start.
        public var seed: UInt64

        /// Makes a dataset description.
        public init(
            name: String, split: String = "test", samples: Int, numClasses: Int,
            classNames: [String]? = nil, seed: UInt64
        ) {
            self.name = name
            self.split = split
            self.samples = samples
            self.numClasses = numClasses
            self.classNames = classNames
            self.seed = seed
        }

        enum CodingKeys: String, CodingKey {
            case name, split, samples
            case numClasses = "num_classes"
            case classNames = "class_names"
            case seed
        }

        /// Encodes every key, absent optionals as `null`.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(split, forKey: .split)
            try c.encode(samples, forKey: .samples)
            try c.encode(numClasses, forKey: .numClasses)
            try c.encode(classNames, forKey: .classNames)
            try c.encode(seed, forKey: .seed)
        }
    }

    /// The norm that bounds a perturbation.
    public enum Norm: String, Codable, Equatable, Sendable {
        /// Largest absolute change of any one input value.
        case linf
        /// Euclidean length of the whole change.
        case l2
    }

    /// The perturbation budget of the attacks.
    public struct Threat: Codable, Equatable, Sendable {
        /// Norm of the budget.
        public var norm: ThreatNorm
        /// Radius in input units (inputs in [0, 1], before normalisation).
        public var epsilon: Double
        /// The radius as the user wrote it, e.g. `8/255`.
        public var epsilonText: String

        /// Makes a threat description.
        public init(norm: ThreatNorm, epsilon: Double, epsilonText: String) {
            self.norm = norm
            self.epsilon = epsilon
            self.epsilonText = epsilonText
        }

        enum CodingKeys: String, CodingKey {
            case norm, epsilon
            case epsilonText = "epsilon_text"
        }
    }

    /// Accuracy without attack.
    public struct Clean: Codable, Equatable, Sendable {
        /// Fraction of samples classified correctly.
        public var accuracy: Double
        /// Number of samples classified correctly.
        public var correct: Int

        /// Makes a clean result.
        public init(accuracy: Double, correct: Int) {
            self.accuracy = accuracy
            self.correct = correct
        }
    }

    /// The result of one attack over all samples.
    public struct Attack: Codable, Equatable, Sendable {
        /// Name of the untargeted APGD attack with cross-entropy loss.
        public static let apgdCE = "apgd-ce"
        /// Name of the targeted APGD attack with DLR loss.
        public static let apgdT = "apgd-t"
        /// Name of projected gradient descent.
        public static let pgd = "pgd"
        /// Name of the fast gradient sign method.
        public static let fgsm = "fgsm"
        /// Name of the gradient-free Square attack.
        public static let square = "square"

        /// Attack name: `apgd-ce`, `apgd-t`, `pgd`, `fgsm`, `square`.
        public var name: String
        /// Its settings as text, e.g. `iterations`, `restarts`, `step`, `target_classes`.
        public var settings: [String: String]
        /// Fraction of samples still classified correctly after the attack.
        public var robustAccuracy: Double
        /// Number of samples still classified correctly after the attack.
        public var correct: Int
        /// Wall-clock time the attack took.
        public var seconds: Double

        /// Makes an attack result.
        public init(
            name: String, settings: [String: String] = [:], robustAccuracy: Double, correct: Int, seconds: Double
        ) {
            self.name = name
            self.settings = settings
            self.robustAccuracy = robustAccuracy
            self.correct = correct
            self.seconds = seconds
        }

        enum CodingKeys: String, CodingKey {
            case name, settings
            case robustAccuracy = "robust_accuracy"
            case correct, seconds
        }
    }

    /// Accuracy when each sample counts as broken if any attack broke it.
    public struct WorstCase: Codable, Equatable, Sendable {
        /// Fraction of samples that survived every attack.
        public var robustAccuracy: Double
        /// Number of samples that survived every attack.
        public var correct: Int

        /// Makes a worst-case result.
        public init(robustAccuracy: Double, correct: Int) {
            self.robustAccuracy = robustAccuracy
            self.correct = correct
        }

        enum CodingKeys: String, CodingKey {
            case robustAccuracy = "robust_accuracy"
            case correct
        }
    }

    /// One attack's accuracy at several epsilons.
    public struct Sweep: Codable, Equatable, Sendable {
        /// Name of the attack used at every epsilon.
        public var attack: String
        /// Number of samples the sweep ran on (may be fewer than the report's).
        public var samples: Int
        /// One point per epsilon; epsilon 0 is clean accuracy on the same samples.
        public var points: [SweepPoint]

        /// Makes a sweep result.
        public init(attack: String, samples: Int, points: [SweepPoint]) {
            self.attack = attack
            self.samples = samples
            self.points = points
        }
    }

    /// Accuracy at one epsilon of a sweep.
    public struct SweepPoint: Codable, Equatable, Sendable {
        /// Radius in input units, same norm as the report's threat.
        public var epsilon: Double
        /// Fraction of the sweep's samples still classified correctly.
        public var accuracy: Double

        /// Makes a sweep point.
        public init(epsilon: Double, accuracy: Double) {
            self.epsilon = epsilon
            self.accuracy = accuracy
        }
    }

    /// One attack's accuracy at several iteration counts, at the report's epsilon.
    public struct IterationsCheck: Codable, Equatable, Sendable {
        /// Name of the attack whose iterations vary.
        public var attack: String
        /// Number of samples the check ran on.
        public var samples: Int
        /// One point per iteration count.
        public var points: [IterationsPoint]

        /// Makes an iterations-check result.
        public init(attack: String, samples: Int, points: [IterationsPoint]) {
            self.attack = attack
            self.samples = samples
            self.points = points
        }
    }

    /// Accuracy after one number of attack iterations.
    public struct IterationsPoint: Codable, Equatable, Sendable {
        /// Attack iterations (steps per restart).
        public var iterations: Int
        /// Fraction of the check's samples still classified correctly.
        public var accuracy: Double

        /// Makes an iterations point.
        public init(iterations: Int, accuracy: Double) {
            self.iterations = iterations
            self.accuracy = accuracy
        }
    }

    /// Clean and worst-case accuracy over the samples of one class.
    public struct ClassResult: Codable, Equatable, Sendable {
        /// Class index.
        public var classIndex: Int
        /// Human name of the class, if known.
        public var name: String?
        /// Number of evaluated samples whose label is this class.
        public var samples: Int
        /// Fraction of them classified correctly without attack.
        public var cleanAccuracy: Double
        /// Fraction of them that survived every attack.
        public var robustAccuracy: Double

        /// Makes a per-class result.
        public init(classIndex: Int, name: String? = nil, samples: Int, cleanAccuracy: Double, robustAccuracy: Double) {
            self.classIndex = classIndex
            self.name = name
            self.samples = samples
            self.cleanAccuracy = cleanAccuracy
            self.robustAccuracy = robustAccuracy
        }

        enum CodingKeys: String, CodingKey {
            case classIndex = "class"
            case name, samples
            case cleanAccuracy = "clean_accuracy"
            case robustAccuracy = "robust_accuracy"
        }

        /// Encodes every key, absent optionals as `null`.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(classIndex, forKey: .classIndex)
            try c.encode(name, forKey: .name)
            try c.encode(samples, forKey: .samples)
            try c.encode(cleanAccuracy, forKey: .cleanAccuracy)
            try c.encode(robustAccuracy, forKey: .robustAccuracy)
        }
    }

    /// The outcome of one sanity check.
    public struct Check: Codable, Equatable, Sendable {
        /// Stable identifier, e.g. `iterations_monotone`.
        public var name: String
        /// Whether the check passed (also true when it could not run; `detail` then says so).
        public var passed: Bool
        /// One or two sentences with the numbers and, on failure, what the failure suggests.
        public var detail: String

        /// Makes a check outcome.
        public init(name: String, passed: Bool, detail: String) {
            self.name = name
            self.passed = passed
            self.detail = detail
        }
    }

    /// Where the time went.
    public struct Timing: Codable, Equatable, Sendable {
        /// Wall-clock time of the whole evaluation.
        public var totalSeconds: Double
        /// Wall-clock time of the clean pass.
        public var cleanSeconds: Double
        /// Number of compute threads used.
        public var threads: Int

        /// Makes a timing summary.
        public init(totalSeconds: Double, cleanSeconds: Double, threads: Int) {
            self.totalSeconds = totalSeconds
            self.cleanSeconds = cleanSeconds
            self.threads = threads
        }

        enum CodingKeys: String, CodingKey {
            case totalSeconds = "total_seconds"
            case cleanSeconds = "clean_seconds"
            case threads
        }
    }
}
