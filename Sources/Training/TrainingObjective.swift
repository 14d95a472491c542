import Attacks
import Models
import TensorCore

/// What a training step fits the model to: the clean batch, adversarial examples made from it
/// against the current model (the way teachers and adversarial baselines are trained), or a
/// frozen teacher's representation of the clean batch (RRM, the way students are distilled).
public enum TrainingObjective: Equatable, Sendable {
    /// Cross-entropy on the clean, augmented batch.
    case natural
    /// PGD adversarial training (Madry et al. 2018): cross-entropy on PGD examples.
    case pgdAT(PGDConfig)
    /// Fast adversarial training (Wong et al. 2020): FGSM from a uniform random start in the
    /// L-inf ball, step `stepSize` (1.25 epsilon in the paper), clipped back to the ball.
    case fgsmRS(epsilon: Float, stepSize: Float)
    /// Robust Representation Matching against the trainer's teacher: no adversarial examples.
    case rrm(RRMLoss)
    /// Free adversarial training (Shafahi et al. 2019) with the replays RRM uses: each batch
    /// takes `replays` optimiser steps on cross-entropy, each after the first on the images of
    /// the one before moved by epsilon along the sign of its input gradient (within the L-inf
    /// ball). It is RRM's replay recipe without the teacher, the control that tells what the
    /// teacher adds.
    case freeAT(epsilon: Float, replays: Int)

    /// The name written into checkpoint metadata as `rrm.trained_by`.
    public var methodName: String {
        switch self {
        case .natural: return "natural"
        case .pgdAT: return "pgd-at"
        case .fgsmRS: return "fgsm-rs"
        case .rrm: return "rrm"
        case .freeAT: return "free-at"
        }
    }

    /// The `rrm.threat_model` value a model trained this way is meant to withstand (an RRM
    /// student inherits its teacher's, which the objective does not know).
    public var threatModel: String {
        switch self {
        case .natural, .rrm: return "none"
        case .pgdAT(let c): return "\(c.norm.rawValue):\(c.epsilon)"
        case .fgsmRS(let eps, _), .freeAT(let eps, _): return "linf:\(eps)"
        }
    }

    /// Whether the objective trains on perturbed images it makes itself (so an epsilon ramp
    /// applies): RRM does when it replays batches within a radius.
    var isAdversarial: Bool {
        switch self {
        case .natural: return false
        case .rrm(let l): return l.replays > 1 && l.replayEpsilon > 0
        case .pgdAT, .fgsmRS, .freeAT: return true
        }
    }

    /// A one-line account of the attack settings, for metadata and logs.
    public var summary: String {
        switch self {
        case .natural: return "natural"
        case .pgdAT(let c):
            return
                "pgd-at \(c.norm.rawValue) eps=\(c.epsilon) step=\(c.stepSize) "
                + "steps=\(c.iterations)\(c.randomStart ? " random-start" : "")"
        case .fgsmRS(let eps, let step): return "fgsm-rs linf eps=\(eps) step=\(step) random-start"
        case .freeAT(let eps, let replays): return "free-at linf eps=\(eps) replays=\(replays)"
        case .rrm(let l):
            let loss = l.featureLoss == .cosine ? "cosine" : "relative-l2"
            let noise = l.inputNoise > 0 ? " input-noise=\(l.inputNoise)" : ""
            let start = l.replayStart == .random ? " replay-start=random" : ""
            let step = l.replayStepFraction != 1 ? " replay-step=\(l.replayStepFraction)eps" : ""
            let replays =
                l.replays > 1 ? " replays=\(l.replays) replay-eps=\(l.replayEpsilon)\(start)\(step)" : ""
            return "rrm \(loss) xent-weight=\(l.xentWeight)\(noise)\(replays)"
        }
    }

    /// The attack that makes a training batch, as a single-restart PGD: Fast-AT is PGD with one
    /// step from a random start, which is exactly Wong et al.'s FGSM-RS.
    var attackConfig: PGDConfig? {
        switch self {
        case .natural, .rrm, .freeAT: return nil
        case .pgdAT(let c):
            return PGDConfig(
                norm: c.norm, epsilon: c.epsilon, stepSize: c.stepSize, iterations: c.iterations,
                restarts: 1, randomStart: c.randomStart)
        case .fgsmRS(let eps, let step):
            return PGDConfig(norm: .linf, epsilon: eps, stepSize: step, iterations: 1, restarts: 1, randomStart: true)
        }
    }

    /// The same objective with the adversary's radius and step multiplied by `factor` (an
    /// epsilon ramp's early steps; RRM's replays step by their radius, so it scales both);
    /// objectives without an adversary are returned unchanged.
    func scaled(by factor: Float) -> TrainingObjective {
        switch self {
        case .natural: return self
        case .rrm(var l):
            l.replayEpsilon *= factor
            return .rrm(l)
        case .pgdAT(var c):
            c.epsilon *= factor
            c.stepSize *= factor
            return .pgdAT(c)
        case .fgsmRS(let eps, let step): return .fgsmRS(epsilon: eps * factor, stepSize: step * factor)
        case .freeAT(let eps, let replays): return .freeAT(epsilon: eps * factor, replays: replays)
        }
    }

    /// The images a step trains on: `images` itself, or adversarial examples against the
    /// current weights. The model is attacked in inference mode (BatchNorm on running
    /// statistics, as TRADES and others do) so that making the attack neither reads nor moves
    /// the batch statistics the training step itself uses.
    func trainingImages(_ model: Network, images: Tensor, labels: [Int32], rng: inout RNG) -> Tensor {
        guard let config = attackConfig else { return images }
        return PGD.attack(model, x: images, labels: labels, config: config, rng: &rng).adversarial
    }

    /// A description of what is wrong, or nil.
    func problem() -> String? {
        switch self {
        case .natural: return nil
        case .rrm(let l):
            if !(l.xentWeight >= 0 && l.xentWeight.isFinite) {
                return "the cross-entropy weight must be a finite number >= 0, got \(l.xentWeight)"
            }
            if !(l.inputNoise >= 0 && l.inputNoise <= 1) {
                return "the matching noise must be in [0, 1], got \(l.inputNoise)"
            }
            if l.replays < 1 { return "replays must be at least 1, got \(l.replays)" }
            if l.replays > 1 && !(l.replayEpsilon > 0 && l.replayEpsilon <= 1) {
                return "replays need a perturbation radius in (0, 1], got \(l.replayEpsilon)"
            }
            if l.replayStart == .random && l.replays < 2 { return "a random replay start needs replays (2 or more)" }
            if !(l.replayStepFraction > 0 && l.replayStepFraction <= 1) {
                return "a replay's step must be a fraction of the radius in (0, 1], got \(l.replayStepFraction)"
            }
            if l.replayStart == .random && l.inputNoise > 0 {
                return "a random replay start is itself the first step's noise: leave the matching noise at 0"
            }
            return nil
        case .pgdAT(let c):
            if !(c.epsilon > 0) { return "adversarial epsilon must be positive, got \(c.epsilon)" }
            if c.iterations < 1 { return "PGD-AT needs at least one attack step, got \(c.iterations)" }
            return nil
        case .fgsmRS(let eps, let step):
            if !(eps > 0) { return "adversarial epsilon must be positive, got \(eps)" }
            if !(step > 0) { return "FGSM-RS step must be positive, got \(step)" }
            return nil
        case .freeAT(let eps, let replays):
            if !(eps > 0 && eps <= 1) { return "adversarial epsilon must be in (0, 1], got \(eps)" }
            if replays < 2 {
                return
                    "free adversarial training needs at least 2 replays per batch (1 is natural training), got "
                    + "\(replays)"
            }
            return nil
        }
    }
}
