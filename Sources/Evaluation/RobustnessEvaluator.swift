import Attacks
import Data
import Foundation
import Kernels
import ModelIO
import Models
import TensorCore

/// Where an evaluation is, for progress displays: `done` of `total` images in `phase`.
public struct RobustnessProgress: Sendable {
    /// `clean`, an attack name, `sweep eps=...` or `iterations n=...`.
    public var phase: String
    /// Images finished and images in the phase.
    public var done, total: Int
}

/// Thrown by `RobustnessEvaluator.evaluate` when its `shouldStop` asked it to stop (a daemon
/// shutting down); nothing is written, and a later evaluation starts over.
public struct EvaluationStopped: Error, CustomStringConvertible {
    public var description: String { "the evaluation was stopped before it finished" }
}

/// A model to evaluate and the facts about its file that go into the report.
public struct EvaluatedModel {
    /// The network, in inference mode throughout.
    public var network: Network
    /// Path of the checkpoint as given.
    public var path: String
    /// SHA-256 of the checkpoint's bytes.
    public var sha256: String
    /// Its metadata (read or inferred).
    public var metadata: ModelMetadata

    /// Bundles a loaded model with its file's identity.
    public init(network: Network, path: String, sha256: String, metadata: ModelMetadata) {
        self.network = network
        self.path = path
        self.sha256 = sha256
        self.metadata = metadata
    }
}

/// The robustness protocol of `rrmd evaluate`: clean accuracy, each attack on every clean-correct
/// image, the per-image worst case over the attacks, an epsilon sweep, an iterations check and
/// per-class accuracy, then the gradient-masking checks. Deterministic for a seed and thread count.
public enum RobustnessEvaluator {
    /// Runs the protocol on `test` (its first `settings.samples` images) and returns the report;
    /// `split` names where the images come from in the report (`test`, or `train` for a check of
    /// overfitting).
    /// Settings must have passed `settings.problem(numClasses:)`. `shouldStop` is asked between
    /// batches; when it answers true the evaluation throws `EvaluationStopped`. With a `journal`
    /// (opened with `journalIdentity`), attacked batches it holds are read back instead of
    /// attacked again, and every newly attacked batch is added to it.
    public static func evaluate(
        _ model: EvaluatedModel, test: Dataset, split: String = "test", settings: RobustnessSettings,
        rrmdVersion: String, journal: EvaluationJournal? = nil, shouldStop: () -> Bool = { false },
        progress: (RobustnessProgress) -> Void = { _ in }
    ) throws -> RobustnessReport {
        precondition(
            settings.problem(numClasses: test.numClasses) == nil,
            "RobustnessEvaluator: \(settings.problem(numClasses: test.numClasses)!)")
        let net = model.network
        precondition(
            test.imageShape == net.config.inputShape,
            "RobustnessEvaluator: dataset images \(test.imageShape) but the model takes \(net.config.inputShape)")
        let start = Date()
        let data = test.prefix(settings.samples)
        let n = data.count

        // Clean pass.
        var cleanCorrect = [Bool](repeating: false, count: n)  // [N]
        try forEachBatch(n, settings.batchSize) { range in
            if shouldStop() { throw EvaluationStopped() }
            let x = data.images.gather(rows: range)  // [B, C, H, W]
            let predictions = evaluateAttackLoss(net, x, labels: Array(data.labels[range])).predictions
            for (j, i) in range.enumerated() { cleanCorrect[i] = predictions[j] == data.labels[i] }
            progress(RobustnessProgress(phase: "clean", done: range.upperBound, total: n))
        }
        let cleanSeconds = Date().timeIntervalSince(start)
        let correctIndices = (0..<n).filter { cleanCorrect[$0] }

        // Every attack on every clean-correct image (or, in a cascade, on the images every earlier
        // attack left standing); an image is robust only if no attack fools it.
        var robust = cleanCorrect  // [N], the worst case so far
        var attackRecords: [RobustnessReport.Attack] = []
        var budgetViolations: [String] = []
        for (a, name) in settings.attacks.enumerated() {
            let t0 = Date()
            var fooled = 0
            var worstExcess = 0.0
            let targets = settings.cascade ? (0..<n).filter { robust[$0] } : correctIndices
            let replayed = try run(
                name, on: targets, data: data, epsilon: settings.epsilon, iterations: settings.iterations,
                settings: settings, net: net, stream: UInt64(a + 1), phase: name, journal: journal,
                shouldStop: shouldStop,
                progress: progress
            ) { index, success, excess in
                if success {
                    fooled += 1
                    robust[index] = false
                }
                worstExcess = max(worstExcess, excess)
            }
            if worstExcess > 1e-5 {
                budgetViolations.append(String(format: "%@ exceeded the budget by %.2g", name, worstExcess))
            }
            let correct = targets.count - fooled
            var recordSettings = attackSettings(name, settings, numClasses: data.numClasses)
            if settings.cascade {
                recordSettings["cascade"] =
                    "true (attacked only the images the attacks before it left correct; accuracy is cumulative)"
            }
            attackRecords.append(
                RobustnessReport.Attack(
                    name: name, settings: recordSettings,
                    robustAccuracy: fraction(correct, n), correct: correct,
                    seconds: Date().timeIntervalSince(t0) + replayed))
        }
        let robustCount = robust.lazy.filter { $0 }.count

        // Accuracy against radius: APGD-CE with a smaller budget on the first images.
        var sweep: RobustnessReport.Sweep?
        if settings.sweepSamples > 0 {
            let m = min(settings.sweepSamples, n)
            let subset = correctIndices.filter { $0 < m }
            var points: [RobustnessReport.SweepPoint] = []
            for (s, eps) in settings.sweepEpsilons(dimension: net.config.inputShape.reduce(1, *)).enumerated() {
                var correct = subset.count
                if eps > 0 {
                    try run(
                        "apgd-ce", on: subset, data: data, epsilon: eps, iterations: settings.sweepIterations,
                        settings: settings,
                        net: net, stream: 0x5EE9 + UInt64(s), phase: String(format: "sweep eps=%.4g", eps),
                        journal: journal,
                        shouldStop: shouldStop, progress: progress
                    ) { _, success, _ in
                        if success { correct -= 1 }
                    }
                }
                points.append(.init(epsilon: eps, accuracy: fraction(correct, m)))
            }
            sweep = .init(attack: "apgd-ce", samples: m, points: points)
        }

        // Robust accuracy against iterations: a stronger budget must never help the model.
        var iterationsCheck: RobustnessReport.IterationsCheck?
        if settings.checkSamples > 0 {
            let m = min(settings.checkSamples, n)
            let subset = correctIndices.filter { $0 < m }
            var points: [RobustnessReport.IterationsPoint] = []
            for iterations in settings.checkIterations {
                var correct = subset.count
                try run(
                    "apgd-ce", on: subset, data: data, epsilon: settings.epsilon, iterations: iterations,
                    settings: settings,
                    net: net, stream: 0x17E2, phase: "iterations n=\(iterations)", journal: journal,
                    shouldStop: shouldStop,
                    progress: progress
                ) { _, success, _ in
                    if success { correct -= 1 }
                }
                points.append(.init(iterations: iterations, accuracy: fraction(correct, m)))
            }
            iterationsCheck = .init(attack: "apgd-ce", samples: m, points: points)
        }

        let names = (try? DatasetCatalog.spec(named: data.name).classNames).flatMap {
            $0.count == data.numClasses ? $0 : nil
        }
        var perClass: [RobustnessReport.ClassResult] = []
        for k in 0..<data.numClasses {
            let members = (0..<n).filter { Int(data.labels[$0]) == k }
            perClass.append(
                .init(
                    classIndex: k, name: names?[k], samples: members.count,
                    cleanAccuracy: fraction(members.filter { cleanCorrect[$0] }.count, members.count),
                    robustAccuracy: fraction(members.filter { robust[$0] }.count, members.count)))
        }

        let meta = model.metadata
        var report = RobustnessReport(
            model: .init(
                path: model.path, sha256: model.sha256, arch: meta.architecture, width: meta.config.widthMultiplier,
                dataset: meta.dataset, parameters: net.parameterCount, trainedBy: meta.trainedBy ?? "unknown",
                threatModel: meta.threatModel, producer: meta.producer),
            data: .init(
                name: data.name, split: split, samples: n, numClasses: data.numClasses, classNames: names,
                seed: settings.seed),
            threat: .init(norm: settings.norm, epsilon: settings.epsilon, epsilonText: settings.epsilonText),
            clean: .init(accuracy: fraction(correctIndices.count, n), correct: correctIndices.count),
            attacks: attackRecords,
            worstCase: .init(robustAccuracy: fraction(robustCount, n), correct: robustCount),
            sweep: sweep, iterationsCheck: iterationsCheck, perClass: perClass,
            timing: .init(totalSeconds: 0, cleanSeconds: cleanSeconds, threads: Compute.threads),
            created: RobustnessReport.timestamp(Date()), rrmdVersion: rrmdVersion)
        report.checks = MaskingChecks.run(report)
        report.checks.append(
            .init(
                name: "perturbation_within_budget", passed: budgetViolations.isEmpty,
                detail: budgetViolations.isEmpty
                    ? "every adversarial image stayed within \(settings.norm.rawValue) epsilon "
                        + "\(settings.epsilonText) of its original and inside [0, 1]"
                    : "an attack left the threat model (\(budgetViolations.joined(separator: "; "))): its numbers are "
                        + "not valid; please report this as a bug"
            ))
        report.timing.totalSeconds = Date().timeIntervalSince(start)
        return report
    }

    /// Attacks the images at `indices` in batches and calls `visit(index, fooled, excess)` for
    /// each, where `excess` is how far the adversarial image strays outside the threat model
    /// (0 when it is inside the ball and [0, 1]). Each batch draws from its own random stream, so
    /// results do not depend on batch order, and a batch `journal` holds is read back rather than
    /// attacked. Returns the seconds the read-back batches had taken.
    @discardableResult
    private static func run(
        _ name: String, on indices: [Int], data: Dataset, epsilon: Double, iterations: Int,
        settings: RobustnessSettings, net: Network, stream: UInt64, phase: String,
        journal: EvaluationJournal?, shouldStop: () -> Bool,
        progress: (RobustnessProgress) -> Void, visit: (Int, Bool, Double) -> Void
    ) throws -> Double {
        let base = RNG(seed: settings.seed).fork(stream)
        var batchIndex = 0
        var replayedSeconds = 0.0
        progress(RobustnessProgress(phase: phase, done: 0, total: indices.count))
        try forEachBatch(indices.count, settings.batchSize) { range in
            let chosen = Array(indices[range])
            defer { batchIndex += 1 }
            if let done = journal?.batch(phase: phase, index: batchIndex, images: chosen) {
                for (j, i) in chosen.enumerated() { visit(i, done.fooled[j], done.excess[j]) }
                replayedSeconds += done.seconds
                progress(RobustnessProgress(phase: phase, done: range.upperBound, total: indices.count))
                return
            }
            if shouldStop() { throw EvaluationStopped() }
            let t0 = Date()
            let x = data.images.gather(rows: chosen)  // [B, C, H, W]
            let labels = chosen.map { data.labels[$0] }
            var rng = base.fork(UInt64(batchIndex))
            let result = attack(
                name, net, x: x, labels: labels, epsilon: Float(epsilon), iterations: iterations,
                settings: settings, numClasses: data.numClasses, rng: &rng)
            let excess = budgetExcess(result.adversarial, x, norm: settings.norm, epsilon: epsilon)
            for (j, i) in chosen.enumerated() { visit(i, result.success[j], excess[j]) }
            try journal?.record(
                phase: phase, index: batchIndex, images: chosen,
                .init(
                    fooled: result.success, excess: excess, seconds: Date().timeIntervalSince(t0)))
            Compute.releaseFreeMemory()
            progress(RobustnessProgress(phase: phase, done: range.upperBound, total: indices.count))
        }
        return replayedSeconds
    }

    /// What identifies one evaluation for its `EvaluationJournal`: the model's bytes, the data,
    /// the settings and the thread count (results are deterministic only for a fixed count).
    public static func journalIdentity(
        _ model: EvaluatedModel, test: Dataset, split: String = "test", settings: RobustnessSettings
    ) -> String {
        let n = min(settings.samples ?? test.count, test.count)
        // The test split is unnamed, as before splits existed, so earlier journals still resume.
        let data = split == "test" ? "\(test.name):\(n)" : "\(test.name)/\(split):\(n)"
        return "model=\(model.sha256) data=\(data) threads=\(Compute.threads) settings=\(settings)"
    }

    /// One attack by name with the evaluation's budget. APGD drops an image from its batch once
    /// fooled (`stopWhenFooled`): an evaluation only counts the fooled, and a weak model's images
    /// then cost a few iterations instead of all of them.
    static func attack(
        _ name: String, _ net: Network, x: Tensor, labels: [Int32], epsilon: Float, iterations: Int,
        settings: RobustnessSettings, numClasses: Int, rng: inout RNG
    ) -> AttackResult {
        switch name {
        case "apgd-ce":
            return APGD.attack(
                net, x: x, labels: labels,
                config: APGDConfig(
                    norm: settings.norm, epsilon: epsilon, iterations: iterations, restarts: settings.restarts,
                    loss: .crossEntropy, stopWhenFooled: true), rng: &rng)
        case "apgd-t":
            return APGD.attack(
                net, x: x, labels: labels,
                config: APGDConfig(
                    norm: settings.norm, epsilon: epsilon, iterations: iterations, restarts: settings.restarts,
                    loss: .targetedDLR,
                    targetClasses: min(settings.targetClasses, numClasses - 1), stopWhenFooled: true), rng: &rng)
        case "pgd":
            return PGD.attack(
                net, x: x, labels: labels,
                config: .standard(
                    norm: settings.norm, epsilon: epsilon, iterations: iterations, restarts: settings.restarts),
                rng: &rng)
        case "fgsm":
            return FGSM.attack(net, x: x, labels: labels, epsilon: epsilon)
        case "square":
            return Square.attack(
                net, x: x, labels: labels, config: SquareConfig(epsilon: epsilon, queries: settings.squareQueries),
                rng: &rng)
        default:
            preconditionFailure("RobustnessEvaluator: unknown attack '\(name)' (settings were not validated)")
        }
    }

    /// The settings of attack `name` as the report lists them.
    static func attackSettings(_ name: String, _ s: RobustnessSettings, numClasses: Int) -> [String: String] {
        var d = ["norm": s.norm.rawValue, "epsilon": s.epsilonText, "seed": "\(s.seed)"]
        switch name {
        case "apgd-ce":
            d["iterations"] = "\(s.iterations)"
            d["restarts"] = "\(s.restarts)"
            d["loss"] = "cross-entropy"
        case "apgd-t":
            d["iterations"] = "\(s.iterations)"
            d["restarts"] = "\(s.restarts)"
            d["loss"] = "targeted DLR"
            d["target_classes"] = "\(min(s.targetClasses, numClasses - 1))"
        case "pgd":
            let c = PGDConfig.standard(
                norm: s.norm, epsilon: Float(s.epsilon), iterations: s.iterations, restarts: s.restarts)
            d["iterations"] = "\(s.iterations)"
            d["restarts"] = "\(s.restarts)"
            d["step"] = "\(c.stepSize)"
            d["random_start"] = "true"
        case "square":
            d["queries"] = "\(s.squareQueries)"
            d["initial_fraction"] = "\(SquareConfig(epsilon: Float(s.epsilon)).initialFraction)"
        default:
            d["step"] = s.epsilonText
        }
        return d
    }

    /// Per image, how far `adv` lies outside the epsilon-ball around `x` or outside [0, 1].
    static func budgetExcess(_ adv: Tensor, _ x: Tensor, norm: ThreatNorm, epsilon: Double) -> [Double] {
        let n = x.dim(0)
        let d = x.count / max(n, 1)
        var excess = [Double](repeating: 0, count: n)
        adv.withUnsafePointer { ap in
            x.withUnsafePointer { xp in
                for e in 0..<n {
                    var linf = 0.0
                    var sq = 0.0
                    var box = 0.0
                    for i in e * d..<(e + 1) * d {
                        let a = Double(ap[i])
                        let delta = a - Double(xp[i])
                        linf = max(linf, abs(delta))
                        sq += delta * delta
                        box = max(box, -a, a - 1)
                    }
                    // Float32 images carry about 6e-8 of rounding per pixel; allow that much.
                    let size = norm == .linf ? linf : sq.squareRoot()
                    excess[e] = max(0, size - epsilon * (1 + 1e-6) - 1e-7, box)
                }
            }
        }
        return excess
    }

    /// Calls `body` with consecutive ranges of at most `size` covering 0..<count.
    static func forEachBatch(_ count: Int, _ size: Int, _ body: (Range<Int>) throws -> Void) rethrows {
        var lo = 0
        while lo < count {
            let hi = min(lo + size, count)
            try body(lo..<hi)
            lo = hi
        }
    }

    /// `part / whole`, 0 for an empty whole.
    static func fraction(_ part: Int, _ whole: Int) -> Double { whole == 0 ? 0 : Double(part) / Double(whole) }
}
