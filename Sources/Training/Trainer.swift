import Checkpoint
import Data
import Foundation
import Kernels
import Models
import NN
import TensorCore

/// Progress of a training run, reported after every step and at the end of every epoch.
public struct TrainingProgress: Sendable {
    /// 0-based epoch and step within it.
    public var epoch, step: Int
    /// Steps per epoch and epochs in the run.
    public var stepsPerEpoch, epochs: Int
    /// Running mean loss and accuracy over the epoch so far.
    public var loss, accuracy: Double
    /// Learning rate of the last step.
    public var learningRate: Float
    /// Training images per second over this session's part of the epoch.
    public var imagesPerSecond: Double
    /// Set at the end of an epoch when a test set is evaluated.
    public var testAccuracy: Double?
    /// Set at the end of an epoch when the trainer has a `RobustProbe`: its accuracy under attack.
    public var robustAccuracy: Double? = nil
    /// True for the end-of-epoch report.
    public var epochDone: Bool
}

/// What a finished run reports.
public struct TrainingSummary: Sendable {
    /// Per-epoch (loss, accuracy) on the training set.
    public var epochs: [(loss: Double, accuracy: Double)]
    /// Final accuracy on the test set.
    public var test: EvaluationResult
    /// Wall time of the whole run in seconds, summed over every session of a resumed run.
    public var seconds: Double
    /// The 0-based epoch whose weights the probe's guard took back, when it did (`test` is then
    /// that epoch's).
    public var restoredEpoch: Int? = nil
    /// The probe's accuracy after every epoch (nil where the run had no probe).
    public var robust: [Double?] = []
}

/// Minibatch SGD with augmentation on the settings' objective: cross-entropy on clean or
/// adversarial batches, or RRM against a frozen teacher. Deterministic for a seed and thread
/// count, and resumable at any step boundary: every random draw is a function of the seed, the
/// epoch and the step, so weights, optimiser state and `position` are the whole state.
public final class Trainer {
    /// The model being trained.
    public let model: Network
    /// Run settings.
    public let settings: TrainingSettings
    /// The optimiser (its momentum is part of the state a resumed run needs).
    public let optimizer: SGD
    /// The frozen teacher of an RRM objective (inference mode, never updated).
    public let teacher: Network?
    /// Where the run is.
    public internal(set) var position = TrainingPosition()
    /// Robustness measured after every epoch, with a guard against losing it; nil measures nothing.
    /// Not part of the run's fingerprint: it never changes the training itself, only which
    /// epoch's weights the run ends with.
    public var probe: RobustProbe?
    /// The weights of the epoch with the best probe so far (names prefixed `best.`), kept while
    /// the probe's guard may still need them.
    var bestState: SafeTensors?

    /// A trainer for `model`; an `.rrm` objective needs `teacher`, whose representation width the
    /// student's must equal (give the student a projection otherwise).
    public init(model: Network, settings: TrainingSettings, teacher: Network? = nil) {
        if case .rrm = settings.objective {
            precondition(teacher != nil, "Trainer: the RRM objective needs a teacher")
            precondition(
                teacher!.representationWidth == model.representationWidth,
                "Trainer: student representation width \(model.representationWidth) differs from the teacher's "
                    + "\(teacher!.representationWidth)"
            )
            precondition(
                teacher!.config.inputShape == model.config.inputShape,
                "Trainer: student input \(model.config.inputShape) differs from the teacher's "
                    + "\(teacher!.config.inputShape)"
            )
        } else {
            precondition(
                teacher == nil, "Trainer: a teacher was given but the objective is \(settings.objective.methodName)")
        }
        self.model = model
        self.settings = settings
        self.teacher = teacher
        optimizer = SGD(parameters: model.namedParameters(), settings: settings.sgd)
    }

    /// Trains on `train` from `position` to the end, evaluating on `test` after every epoch,
    /// without stopping early or saving state.
    public func run(train: Dataset, test: Dataset, progress: (TrainingProgress) -> Void = { _ in }) -> TrainingSummary {
        // Neither closure can stop the run, so it always finishes with a summary.
        run(train: train, test: test, shouldStop: { false }, epochEnd: { _ in }, progress: progress)!
    }

    /// Trains on `train` from `position` to the end, evaluating on `test` after every epoch.
    /// `shouldStop` is asked before every step: when it answers true the run stops there and
    /// returns nil, and a later `run` (after `restoreState` in a new process) continues exactly.
    /// `epochEnd` is called after each epoch, e.g. to save the state.
    public func run(
        train: Dataset, test: Dataset, shouldStop: () -> Bool, epochEnd: (Trainer) throws -> Void,
        progress: (TrainingProgress) -> Void = { _ in }
    ) rethrows -> TrainingSummary? {
        let options = BatchOptions(
            batchSize: settings.batchSize, shuffle: true, dropLast: true,
            cropPadding: settings.cropPadding, horizontalFlip: settings.horizontalFlip)
        let stepsPerEpoch = options.batchCount(samples: train.count)
        precondition(
            stepsPerEpoch > 0,
            "Trainer: \(train.count) training samples is less than one batch of \(settings.batchSize)")
        let schedule = settings.lrSchedule(totalSteps: stepsPerEpoch * settings.epochs)
        // Attack randomness has its own stream per step, so a resumed run draws the same starts.
        let attackStream = RNG(seed: settings.seed).fork(0xA77AC)
        var images = Tensor(shape: [0])
        var labels: [Int32] = []
        var sessionStart = Date()
        defer { position.elapsedSeconds += Date().timeIntervalSince(sessionStart) }

        while position.epoch < settings.epochs {
            var iterator = train.batches(
                options: options, seed: settings.seed, epoch: position.epoch, startBatch: position.step)
            let epochStart = Date()
            let firstStep = position.step
            while position.step < stepsPerEpoch {
                if shouldStop() { return nil }
                guard iterator.next(into: &images, labels: &labels) else { break }
                let t = position.epoch * stepsPerEpoch + position.step
                let lr = schedule.rate(at: t)
                if let m = schedule.momentum(at: t) { optimizer.settings.momentum = m }
                var attackRNG = attackStream.fork(UInt64(t))
                let (loss, correct) = step(
                    images: images, labels: labels, lr: lr,
                    objective: settings.objective(atStep: t, stepsPerEpoch: stepsPerEpoch),
                    rng: &attackRNG)
                position.lossSum += Double(loss) * Double(labels.count)
                position.correct += correct
                position.seen += labels.count
                position.step += 1
                let rate =
                    Double((position.step - firstStep) * settings.batchSize)
                    / max(Date().timeIntervalSince(epochStart), 1e-9)
                progress(
                    TrainingProgress(
                        epoch: position.epoch, step: position.step, stepsPerEpoch: stepsPerEpoch,
                        epochs: settings.epochs,
                        loss: position.lossSum / Double(position.seen),
                        accuracy: Double(position.correct) / Double(position.seen),
                        learningRate: lr, imagesPerSecond: rate, testAccuracy: nil, epochDone: false))
            }
            let seen = Double(max(position.seen, 1))
            let testResult = evaluateAccuracy(model, on: test)
            let robust = probe?.measure(model)
            if let robust, robust > position.history.compactMap(\.robust).max() ?? -1, probe?.restoreBelowBest != nil {
                bestState = SafeTensors(model.stateTensors(prefix: Self.bestPrefix))
            }
            position.history.append(
                EpochRecord(
                    loss: position.lossSum / seen, accuracy: Double(position.correct) / seen, test: testResult,
                    robust: robust))
            let rate =
                Double((position.step - firstStep) * settings.batchSize)
                / max(Date().timeIntervalSince(epochStart), 1e-9)
            progress(
                TrainingProgress(
                    epoch: position.epoch, step: position.step, stepsPerEpoch: stepsPerEpoch, epochs: settings.epochs,
                    loss: position.history.last!.loss, accuracy: position.history.last!.accuracy,
                    learningRate: schedule.rate(at: (position.epoch + 1) * stepsPerEpoch - 1),
                    imagesPerSecond: rate, testAccuracy: testResult.accuracy, robustAccuracy: robust,
                    epochDone: true))
            position.startEpoch(position.epoch + 1)
            Compute.releaseFreeMemory()
            // Bank the elapsed time before saving, so the state file carries it.
            position.elapsedSeconds += Date().timeIntervalSince(sessionStart)
            sessionStart = Date()
            try epochEnd(self)
        }
        let restored = restoreBestIfLost()
        return TrainingSummary(
            epochs: position.history.map { ($0.loss, $0.accuracy) },
            test: (restored.map { position.history[$0] } ?? position.history.last)?.test
                ?? evaluateAccuracy(model, on: test),
            seconds: position.elapsedSeconds + Date().timeIntervalSince(sessionStart), restoredEpoch: restored,
            robust: position.history.map(\.robust))
    }

    /// Prefix of the best epoch's weights in `bestState` and in state files.
    static let bestPrefix = "best."

    /// The probe's guard at the end of a run: when the last epoch's probe lies more than the
    /// margin under the best epoch's, loads that epoch's weights and returns its index.
    func restoreBestIfLost() -> Int? {
        guard let probe, let last = position.history.last?.robust else { return nil }
        let scored = position.history.enumerated().compactMap { i, r in r.robust.map { (i, $0) } }
        // The first of equally good epochs: the one whose weights `bestState` holds.
        guard let best = scored.max(by: { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 > $1.0) }),
            best.0 != position.history.count - 1, probe.shouldRestore(best: best.1, last: last),
            // A run begun without the guard and resumed with it kept no weights to take back.
            let bestState
        else { return nil }
        // loadState checks every tensor before changing any, so a failure keeps the last weights.
        guard (try? model.loadState(from: bestState, prefix: Self.bestPrefix)) != nil else { return nil }
        return best.0
    }

    /// One step exactly as training takes it, for `rrmd bench`.
    public func benchmarkStep(images: Tensor, labels: [Int32]) {
        var rng = RNG(seed: settings.seed)
        _ = step(images: images, labels: labels, lr: 0.1, objective: settings.objective, rng: &rng)
    }

    /// One optimiser step on `objective` (the settings' one, or its ramped-down radius early in
    /// a ramp); returns the batch loss and the number of images the model classified correctly
    /// (on the images it trained on).
    private func step(
        images: Tensor, labels: [Int32], lr: Float, objective stepObjective: TrainingObjective,
        rng: inout RNG
    ) -> (loss: Float, correct: Int) {
        var logits: Tensor
        var loss: Float
        switch stepObjective {
        case .rrm(let objective):
            // The teacher sees the same augmented batch (with the same noise, when the objective
            // adds any); its features are recomputed every batch and no gradient flows into it.
            // Every replay but the last takes its optimiser step here; the last one's is the
            // step every objective ends with, below.
            var inputs = objective.matchingImages(images, rng: &rng)
            (logits, loss) = (Tensor(shape: [0]), 0)
            for replay in 0..<objective.replays {
                if replay > 0 { optimizer.step(lr: lr) }
                let target = teacher!.forwardWithRepresentation(inputs, mode: .inference).representation
                optimizer.zeroGradients()
                let out = model.forwardWithRepresentation(inputs, mode: .training)
                let r = objective.evaluate(
                    logits: out.logits, labels: labels, student: out.representation, teacher: target)
                let dx = model.backward(
                    logitsGradient: r.logitsGradient, representationGradient: r.representationGradient,
                    parameterGradients: true)
                if replay + 1 < objective.replays {
                    inputs = objective.replayImages(clean: images, current: inputs, gradient: dx)
                }
                logits = out.logits
                loss = r.value
            }
        case .freeAT(let epsilon, let replays):
            // RRM's replays with cross-entropy in place of the teacher: every replay but the
            // last takes its optimiser step here, the last one below.
            var inputs = images
            (logits, loss) = (Tensor(shape: [0]), 0)
            for replay in 0..<replays {
                if replay > 0 { optimizer.step(lr: lr) }
                optimizer.zeroGradients()
                logits = model.forward(inputs, mode: .training)
                let ce = softmaxCrossEntropy(logits: logits, labels: labels)
                let dx = model.backward(ce.gradient, parameterGradients: true)
                if replay + 1 < replays {
                    inputs = replayStep(clean: images, current: inputs, gradient: dx, epsilon: epsilon)
                }
                loss = ce.value
            }
        default:
            let inputs = stepObjective.trainingImages(model, images: images, labels: labels, rng: &rng)
            optimizer.zeroGradients()
            logits = model.forward(inputs, mode: .training)
            let ce = softmaxCrossEntropy(logits: logits, labels: labels)
            _ = model.backward(ce.gradient, parameterGradients: true)
            loss = ce.value
        }
        optimizer.step(lr: lr)
        return (loss, zip(argmaxRows(logits), labels).lazy.filter { $0 == $1 }.count)
    }
}
