import NN
import TensorCore

/// The Robust Representation Matching objective (design.md §1):
/// `xentWeight * CE(student logits, y) + featureLoss(student representation, teacher representation)`.
/// The teacher's representation is a constant: only the student receives gradients.
public struct RRMLoss: Equatable, Sendable {
    /// Weight of the cross-entropy term (`lambda`; the paper's CIFAR-10 L-inf value is 0.005).
    public var xentWeight: Float
    /// How representations are compared (cosine in the paper's CIFAR-10 runs).
    public var featureLoss: FeatureLoss
    /// Half-width `a` of the uniform noise added to every pixel of the batch that student and
    /// teacher both see (then clipped to [0, 1]); 0, the paper's method, matches on the clean
    /// batch only. Matching on noisy copies asks the student to agree with the robust teacher
    /// in a neighbourhood of each image, not only at the image (docs/rrm-study.md).
    public var inputNoise: Float

    /// Optimiser steps taken on each batch (at least 1; 1 is the paper's method). Replay r + 1
    /// matches at the images of replay r moved by `replayEpsilon` along the sign of that replay's
    /// input gradient of this loss, kept within `replayEpsilon` (L-inf) of the batch and in
    /// [0, 1]: Free-AT's minibatch replay (Shafahi et al. 2019) applied to the matching, so the
    /// student also meets the teacher where it departs from it fastest, for the price of steps
    /// it takes anyway (the input gradient comes with every backward pass).
    public var replays: Int
    /// The L-inf radius of the replays' perturbations, in [0, 1] pixel units (the teacher's epsilon).
    public var replayEpsilon: Float
    /// Where a batch's replays start: the batch itself, or a uniform random point of the
    /// `replayEpsilon` ball around it (FGSM-RS's random start, Wong et al. 2020). Sign
    /// steps of the whole radius from the clean batch are zero-init FGSM, which can let the
    /// student overfit to them catastrophically (MNIST at 0.3: 4.6 % robust; from a random
    /// start 61.9 %, docs/rrm-study.md).
    public var replayStart: ReplayStart
    /// A replay's step as a fraction of `replayEpsilon` (1: Free-AT's step of the whole radius,
    /// which lands every replay after the first on a corner of the ball; smaller steps keep them
    /// inside it, as PGD's do).
    public var replayStepFraction: Float = 1

    /// The cross-entropy weight rrmd uses when none is given: the paper's 0.005 for its single
    /// step per batch; 0.5 with replays, where the labels at the replayed images make the student
    /// robust (docs/rrm-study.md: 56.0 % against 49.0 % robust from one teacher, 58.4 % against
    /// 54.3 % from another, with higher clean accuracy too). At a single step 0.5 would let the
    /// labels win outright (a natural network).
    public static func defaultXentWeight(replays: Int) -> Float { replays > 1 ? 0.5 : 0.005 }

    /// The replay start rrmd uses when none is given: a random one whenever a batch is replayed
    /// (docs/rrm-study.md: on every dataset and student tried it kept more of the teacher, and
    /// from the clean batch MNIST's students overfitted to their replays), else the batch itself.
    public static func defaultReplayStart(replays: Int) -> ReplayStart { replays > 1 ? .random : .clean }

    /// Epochs over which rrmd ramps the replays' radius when none is given: the first one for
    /// replays from a random start, whose full-radius first steps can leave a student at chance
    /// (docs/rrm-study.md, "A random start ..."), none from the clean batch.
    public static func defaultEpsilonRamp(replayStart: ReplayStart) -> Double { replayStart == .random ? 1 : 0 }

    /// The objective with the paper's CIFAR-10 L-inf defaults.
    public init(
        xentWeight: Float = 0.005, featureLoss: FeatureLoss = .cosine, inputNoise: Float = 0,
        replays: Int = 1, replayEpsilon: Float = 0, replayStart: ReplayStart = .clean
    ) {
        self.xentWeight = xentWeight
        self.featureLoss = featureLoss
        self.inputNoise = inputNoise
        self.replays = replays
        self.replayEpsilon = replayEpsilon
        self.replayStart = replayStart
    }

    /// The next replay's images `[N, C, H, W]`: `current` moved by `replayEpsilon` along the sign
    /// of `gradient` (dLoss/dinput at `current`), projected into the L-inf ball around `clean`
    /// and into [0, 1].
    public func replayImages(clean: Tensor, current: Tensor, gradient: Tensor) -> Tensor {
        replayStep(
            clean: clean, current: current, gradient: gradient, epsilon: replayEpsilon,
            step: replayStepFraction * replayEpsilon)
    }

    /// The images `[N, C, H, W]` of a batch's first step: `images` with uniform noise of half-width
    /// `inputNoise` (or, for replays from a random start, `replayEpsilon`) added and clipped to
    /// [0, 1]; `images` itself when there is none.
    public func matchingImages(_ images: Tensor, rng: inout RNG) -> Tensor {
        let a = replayStart == .random && replays > 1 ? replayEpsilon : inputNoise
        guard a > 0 else { return images }
        var noisy = images
        let n = noisy.count
        noisy.withUnsafeMutablePointer { p in
            for i in 0..<n { p[i] = min(max(p[i] + rng.uniform(-a, a), 0), 1) }
        }
        return noisy
    }

    /// The loss and its parts for one batch, with the gradients to feed `Network.backward`.
    public struct Result {
        /// The whole objective.
        public var value: Float
        /// Mean cross-entropy (unweighted) and the feature loss.
        public var crossEntropy, feature: Float
        /// dLoss/dLogits `[N, K]` (already scaled by `xentWeight`).
        public var logitsGradient: Tensor
        /// dLoss/dRepresentation `[N, D]` of the student.
        public var representationGradient: Tensor
    }

    /// Evaluates the objective for student logits `[N, K]`, labels `[N]`, student representation
    /// `[N, D]` and the frozen teacher's representation `[N, D]`.
    public func evaluate(logits: Tensor, labels: [Int32], student: Tensor, teacher: Tensor) -> Result {
        precondition(
            student.shape == teacher.shape,
            "RRMLoss: student representation \(student.shape) and teacher representation \(teacher.shape) differ; a "
                + "student needs a projection to the teacher's width"
        )
        let ce = softmaxCrossEntropy(logits: logits, labels: labels)
        let fl = featureLoss.evaluate(student: student, teacher: teacher)
        var dLogits = ce.gradient
        let n = dLogits.count
        let w = xentWeight
        dLogits.withUnsafeMutablePointer { p in for i in 0..<n { p[i] *= w } }
        return Result(
            value: w * ce.value + fl.value, crossEntropy: ce.value, feature: fl.value,
            logitsGradient: dLogits, representationGradient: fl.studentGradient)
    }
}

/// Where a batch's replays start (`RRMLoss.replayStart`; `--replay-start`, `[rrm] replay_start`).
public enum ReplayStart: String, CaseIterable, Sendable {
    /// The batch itself.
    case clean
    /// A uniform random point of the replay ball around the batch.
    case random
}

extension RRMLoss: CustomStringConvertible {
    /// The objective as it appears in a training run's fingerprint (`Trainer.fingerprint`). The
    /// options added after the paper's two print only when set, so a state file saved by an
    /// earlier rrmd (a daemon upgraded mid-job) still matches the run it belongs to.
    public var description: String {
        var text = "Training.RRMLoss(xentWeight: \(xentWeight), featureLoss: NN.FeatureLoss.\(featureLoss)"
        if inputNoise != 0 { text += ", inputNoise: \(inputNoise)" }
        if replays != 1 { text += ", replays: \(replays), replayEpsilon: \(replayEpsilon)" }
        // Spelled as when the option was a flag, so state files saved then still continue.
        if replayStart == .random { text += ", replayRandomStart: true" }
        if replayStepFraction != 1 { text += ", replayStepFraction: \(replayStepFraction)" }
        return text + ")"
    }
}
