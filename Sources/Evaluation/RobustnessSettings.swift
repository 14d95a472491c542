import Attacks

/// How `rrmd evaluate` measures robustness: threat model, attacks and their budgets, how many
/// test images, and the extra runs the gradient-masking checks need. Defaults follow AutoAttack's
/// standard version for APGD (100 iterations, 9 target classes).
public struct RobustnessSettings: Equatable, Sendable {
    /// Attack names `attacks` may hold (they run in the order `attacks` lists them).
    public static let knownAttacks = ["apgd-ce", "apgd-t", "pgd", "fgsm", "square"]

    /// Norm of the threat model.
    public var norm: ThreatNorm
    /// Radius in [0, 1] pixel units.
    public var epsilon: Double
    /// The radius as the user wrote it (`8/255`), for reports.
    public var epsilonText: String
    /// Attacks to run, each on every clean-correct image; names from `knownAttacks`.
    public var attacks: [String]
    /// Evaluate the first `samples` test images (nil: the whole test split).
    public var samples: Int?
    /// Images attacked together (memory grows with it; throughput barely does beyond ~100).
    public var batchSize: Int
    /// APGD iterations per restart (and PGD's iterations).
    public var iterations: Int
    /// Restarts of every attack; each image keeps its worst case.
    public var restarts: Int
    /// Target classes of APGD-T (AutoAttack's standard: 9); at most classes - 1.
    public var targetClasses: Int
    /// Queries per image of the Square attack (AutoAttack's standard: 5,000).
    public var squareQueries: Int
    /// Images of the epsilon sweep (0 disables it).
    public var sweepSamples: Int
    /// APGD-CE iterations at each sweep point.
    public var sweepIterations: Int
    /// Images of the iterations check (0 disables it).
    public var checkSamples: Int
    /// APGD-CE iteration counts of the iterations check, increasing.
    public var checkIterations: [Int]
    /// Seed of every random start.
    public var seed: UInt64
    /// Run each attack only on the images the attacks before it left correct, as AutoAttack
    /// does: the worst case is as strong (only the random starts differ, as batches form
    /// differently) and much cheaper, but each attack's own accuracy becomes
    /// cumulative (and the targeted-vs-untargeted masking check loses its meaning).
    public var cascade: Bool

    /// Settings with the defaults of `rrmd evaluate`.
    public init(
        norm: ThreatNorm = .linf, epsilon: Double = 8.0 / 255, epsilonText: String = "8/255",
        attacks: [String] = ["apgd-ce", "apgd-t"], samples: Int? = nil, batchSize: Int = 200,
        iterations: Int = 100, restarts: Int = 1, targetClasses: Int = 9, squareQueries: Int = 5000,
        sweepSamples: Int = 1000, sweepIterations: Int = 20,
        checkSamples: Int = 500, checkIterations: [Int] = [5, 10, 25, 50, 100], seed: UInt64 = 0, cascade: Bool = false
    ) {
        self.norm = norm
        self.epsilon = epsilon
        self.epsilonText = epsilonText
        self.attacks = attacks
        self.samples = samples
        self.batchSize = batchSize
        self.iterations = iterations
        self.restarts = restarts
        self.targetClasses = targetClasses
        self.squareQueries = squareQueries
        self.sweepSamples = sweepSamples
        self.sweepIterations = sweepIterations
        self.checkSamples = checkSamples
        self.checkIterations = checkIterations
        self.seed = seed
        self.cascade = cascade
    }

    /// The sweep's radii: fractions and multiples of epsilon, then one radius large enough that
    /// any model should fall to about chance (L-inf 0.5 lets every pixel become mid-grey; L2
    /// half the norm of an all-ones image of `dimension` pixels).
    public func sweepEpsilons(dimension: Int) -> [Double] {
        var radii = [0, 0.25, 0.5, 1, 2, 4].map { $0 * epsilon }
        let large = norm == .linf ? 0.5 : 0.5 * Double(dimension).squareRoot()
        if radii.last! < large { radii.append(large) }
        return radii
    }

    /// A description of what is wrong for a dataset of `numClasses` classes, or nil.
    public func problem(numClasses: Int) -> String? {
        if !(epsilon > 0 && epsilon.isFinite) { return "epsilon must be a positive number, got \(epsilonText)" }
        if norm == .linf && epsilon > 1 {
            return "an L-inf epsilon above 1 allows any image in [0, 1]; got \(epsilonText)"
        }
        if attacks.isEmpty { return "no attacks given; choose from \(Self.knownAttacks.joined(separator: ", "))" }
        if let bad = attacks.first(where: { !Self.knownAttacks.contains($0) }) {
            return "unknown attack '\(bad)'; choose from \(Self.knownAttacks.joined(separator: ", "))"
        }
        if Set(attacks).count != attacks.count {
            return "an attack is listed twice in \(attacks.joined(separator: ","))"
        }
        if attacks.contains("fgsm") && norm != .linf { return "fgsm is an L-inf attack; use pgd or apgd-ce for l2" }
        if attacks.contains("square") {
            if norm != .linf { return "rrmd's square attack is the L-inf one; use apgd-ce or pgd for l2" }
            if squareQueries < 1 { return "square queries must be at least 1, got \(squareQueries)" }
        }
        if attacks.contains("apgd-t") {
            if numClasses < 4 { return "apgd-t's DLR loss needs at least 4 classes; the dataset has \(numClasses)" }
            if targetClasses < 1 || targetClasses > numClasses - 1 {
                return "target classes must be from 1 to \(numClasses - 1), got \(targetClasses)"
            }
        }
        if let n = samples, n < 1 { return "samples must be at least 1, got \(n)" }
        if batchSize < 1 { return "batch size must be at least 1, got \(batchSize)" }
        if iterations < 1 { return "iterations must be at least 1, got \(iterations)" }
        if restarts < 1 { return "restarts must be at least 1, got \(restarts)" }
        if sweepSamples < 0 || checkSamples < 0 { return "sweep and check samples must be non-negative" }
        if sweepSamples > 0 && sweepIterations < 1 {
            return "sweep iterations must be at least 1, got \(sweepIterations)"
        }
        if checkSamples > 0
            && (checkIterations.count < 2 || zip(checkIterations, checkIterations.dropFirst()).contains { $0 >= $1 }
                || checkIterations[0] < 1)
        {
            return "check iterations must be at least two increasing positive counts, got \(checkIterations)"
        }
        return nil
    }
}

extension RobustnessSettings: CustomStringConvertible {
    /// The settings as evaluation journals identify them (`RobustnessEvaluator.journalIdentity`):
    /// what Swift's default description printed before `squareQueries` existed, which is left out
    /// while no square attack runs, so a journal written by an earlier rrmd still resumes.
    public var description: String {
        let fields = Mirror(reflecting: self).children.compactMap { child -> String? in
            guard let label = child.label else { return nil }
            if label == "squareQueries" && !attacks.contains("square") { return nil }
            return "\(label): \(String(reflecting: child.value))"
        }
        return "RobustnessSettings(\(fields.joined(separator: ", ")))"
    }
}
