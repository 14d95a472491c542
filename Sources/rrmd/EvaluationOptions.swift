import ArgumentParser
import Attacks
import Evaluation

/// The robustness-protocol options shared by `evaluate` and `distill`.
struct EvaluationOptions: ParsableArguments {
    @Option(help: "Threat-model norm: linf or l2 (default: the model's threat model, else linf).") var norm: String?
    @Option(
        help: "Attack radius in [0, 1] pixel units, e.g. 0.1 or 8/255 (default: the model's threat model, else 8/255).")
    var epsilon: String?
    @Option(help: "Comma-separated attacks: \(RobustnessSettings.knownAttacks.joined(separator: ", ")).") var attacks =
        "apgd-ce,apgd-t"
    @Option(help: "Evaluate the first N test images (default: all).") var samples: Int?
    @Option(help: "APGD and PGD iterations.") var iterations = 100
    @Option(help: "Restarts of each attack.") var restarts = 1
    @Option(name: .customLong("target-classes"), help: "Target classes of apgd-t.") var targetClasses = 9
    @Option(name: .customLong("square-queries"), help: "Queries per image of the gradient-free square attack.")
    var squareQueries = 5000
    @Option(name: .customLong("sweep-samples"), help: "Images in the epsilon sweep (0: no sweep).") var sweepSamples =
        1000
    @Option(name: .customLong("check-samples"), help: "Images in the iterations check (0: no check).")
    var checkSamples = 500
    @Option(name: .customLong("attack-batch"), help: "Images attacked together.") var attackBatch = 200
    @Option(name: .customLong("attack-seed"), help: "Seed of the attacks' random starts.") var attackSeed: UInt64 = 0
    @Option(
        help:
            ArgumentHelp("Keep attacked batches in this file as they finish, so that running the same command again "
                + "after an interruption resumes where it stopped (removed once the report is written).")
    )
    var journal: String?
    @Flag(
        help:
            ArgumentHelp("Attack only what the previous attacks left correct (AutoAttack's way): an equally strong "
                + "worst case, much faster, but per-attack accuracies become cumulative.")
    ) var cascade = false

    /// The settings these options describe, falling back to the model's own threat model.
    func settings(threat: ThreatModel?) throws -> RobustnessSettings {
        let normText = norm ?? threat?.norm?.rawValue ?? "linf"
        guard let threatNorm = ThreatNorm(rawValue: normText) else {
            throw ValidationError("unknown --norm '\(normText)'; use linf or l2")
        }
        let epsText: String
        if let epsilon {
            epsText = epsilon
        } else if let t = threat, t.norm?.rawValue == normText, t.epsilon > 0 {
            epsText = "\(t.epsilon)"
        } else if threatNorm == .linf {
            epsText = "8/255"
        } else {
            throw ValidationError(
                "--norm l2 needs --epsilon (e.g. 0.5) when the model's metadata has no L2 threat model")
        }
        guard let eps = parseEpsilon(epsText), eps > 0 else {
            throw ValidationError("--epsilon '\(epsText)' is not a positive number or fraction such as 8/255")
        }
        return RobustnessSettings(
            norm: threatNorm, epsilon: eps, epsilonText: epsText,
            attacks: attacks.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) },
            samples: samples, batchSize: attackBatch, iterations: iterations, restarts: restarts,
            targetClasses: targetClasses, squareQueries: squareQueries,
            sweepSamples: sweepSamples, checkSamples: checkSamples, seed: attackSeed, cascade: cascade)
    }
}
