import NN

/// How a training run goes: optimiser, schedule, batching, augmentation and seed.
public struct TrainingSettings: Equatable, Sendable {
    /// Passes over the training set.
    public var epochs: Int
    /// Images per step.
    public var batchSize: Int
    /// Peak learning rate.
    public var learningRate: Float
    /// Shape of the learning-rate curve over the run (per iteration).
    public var schedule: ScheduleKind
    /// SGD hyper-parameters other than the rate.
    public var sgd: SGD.Settings
    /// Zero padding of the random crop (0 disables cropping).
    public var cropPadding: Int
    /// Random horizontal flips, where the dataset allows them.
    public var horizontalFlip: Bool
    /// Seed of initialisation, shuffling, augmentation and attack starts.
    public var seed: UInt64
    /// Clean or adversarial batches.
    public var objective: TrainingObjective
    /// Epochs over which an adversarial objective's radius (and step) grows linearly from 0 to
    /// its full value, step by step; 0 attacks at full strength from the first step. A ramp lets
    /// adversarial training start at budgets a fresh network cannot fit at once (MNIST at L-inf
    /// 0.3 stays at chance without one); for RRM it ramps the replays' radius.
    public var epsilonRampEpochs: Double = 0

    /// Learning-rate curves a run can use.
    public enum ScheduleKind: String, CaseIterable, Sendable {
        /// Constant rate.
        case constant
        /// Cosine annealing per iteration down to 1e-6 (the RRM paper's choice).
        case cosine
        /// x0.1 at 50% and 75% of the run.
        case multistep
        /// PyTorch's OneCycleLR.
        case onecycle
        /// Linear up to the peak at 40% of the run, then down to 0 (Fast-AT).
        case cyclic
    }

    /// Settings with the defaults of the paper's student training (SGD momentum 0.9, weight
    /// decay 5e-4, lr 0.1, cosine per iteration, batch 128).
    public init(
        epochs: Int = 10, batchSize: Int = 128, learningRate: Float = 0.1, schedule: ScheduleKind = .cosine,
        sgd: SGD.Settings = .init(momentum: 0.9, weightDecay: 5e-4), cropPadding: Int = 4,
        horizontalFlip: Bool = true, seed: UInt64 = 0, objective: TrainingObjective = .natural
    ) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.schedule = schedule
        self.sgd = sgd
        self.cropPadding = cropPadding
        self.horizontalFlip = horizontalFlip
        self.seed = seed
        self.objective = objective
    }

    /// The per-iteration schedule for a run of `totalSteps` steps.
    public func lrSchedule(totalSteps: Int) -> LRSchedule {
        switch schedule {
        case .constant: return .constant(learningRate)
        case .cosine: return .cosine(lr: learningRate, total: totalSteps, minLR: 1e-6)
        case .multistep:
            return .multiStep(lr: learningRate, milestones: [totalSteps / 2, totalSteps * 3 / 4], gamma: 0.1)
        case .onecycle: return .oneCycle(maxLR: learningRate, total: totalSteps)
        case .cyclic: return .triangular(maxLR: learningRate, total: totalSteps, peak: 0.4)
        }
    }

    /// The objective of step `t` (0-based over the run) of a run with `stepsPerEpoch` steps per
    /// epoch: the configured one, with its radius scaled by the ramp while it lasts.
    public func objective(atStep t: Int, stepsPerEpoch: Int) -> TrainingObjective {
        let rampSteps = epsilonRampEpochs * Double(stepsPerEpoch)
        guard rampSteps > 0, Double(t + 1) < rampSteps else { return objective }
        return objective.scaled(by: Float(Double(t + 1) / rampSteps))
    }

    /// A description of what is wrong, or nil when the settings can run.
    public func problem() -> String? {
        if epochs < 1 { return "epochs must be at least 1, got \(epochs)" }
        if batchSize < 2 { return "batch size must be at least 2 (BatchNorm needs two samples), got \(batchSize)" }
        if !(learningRate > 0 && learningRate.isFinite) { return "learning rate must be positive, got \(learningRate)" }
        if cropPadding < 0 { return "crop padding must be non-negative, got \(cropPadding)" }
        if sgd.momentum < 0 || sgd.momentum >= 1 { return "momentum must be in [0, 1), got \(sgd.momentum)" }
        if sgd.weightDecay < 0 { return "weight decay must be non-negative, got \(sgd.weightDecay)" }
        if !(epsilonRampEpochs >= 0 && epsilonRampEpochs <= Double(epochs)) {
            return "the epsilon ramp must last from 0 to \(epochs) epochs (the whole run), got \(epsilonRampEpochs)"
        }
        if epsilonRampEpochs > 0, !objective.isAdversarial {
            return "an epsilon ramp needs an adversarial objective (pgd, fgsm-rs, free, or rrm with replays), "
                + "not \(objective.summary)"
        }
        return objective.problem()
    }
}

extension TrainingSettings: CustomStringConvertible {
    /// The settings as training-state fingerprints show them (`Trainer.fingerprint`): what
    /// Swift's default description printed before `epsilonRampEpochs` existed, which is left
    /// out while it is 0, so a state file written by an earlier rrmd still continues.
    public var description: String {
        let fields = Mirror(reflecting: self).children.compactMap { child -> String? in
            guard let label = child.label else { return nil }
            if label == "epsilonRampEpochs" && epsilonRampEpochs == 0 { return nil }
            return "\(label): \(String(reflecting: child.value))"
        }
        return "TrainingSettings(\(fields.joined(separator: ", ")))"
    }
}
