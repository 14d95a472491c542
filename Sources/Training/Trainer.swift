import Data
import Foundation
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
    /// Training images per second over the epoch so far.
    public var imagesPerSecond: Double
    /// Set at the end of an epoch when a test set is evaluated.
    public var testAccuracy: Double?
    /// True for the end-of-epoch report.
    public var epochDone: Bool
}

/// What a finished run reports.
public struct TrainingSummary: Sendable {
    /// Per-epoch (loss, accuracy) on the training set.
    public var epochs: [(loss: Double, accuracy: Double)]
    /// Final accuracy on the test set.
    public var test: EvaluationResult
    /// Wall time of the whole run in seconds.
    public var seconds: Double
}

/// Minibatch SGD on cross-entropy with augmentation, on clean or adversarial batches as the
/// settings' objective says; deterministic for a seed and thread count.
public final class Trainer {
    /// The model being trained.
    public let model: Network
    /// Run settings.
    public let settings: TrainingSettings
    /// The optimiser (its state is what a resumed run needs besides the weights).
    public let optimizer: SGD

    /// A trainer for `model`.
    public init(model: Network, settings: TrainingSettings) {
        self.model = model
        self.settings = settings
        optimizer = SGD(parameters: model.namedParameters(), settings: settings.sgd)
    }

    /// Trains on `train`, evaluates on `test` after every epoch, and reports progress.
    public func run(train: Dataset, test: Dataset, progress: (TrainingProgress) -> Void = { _ in }) -> TrainingSummary {
        let options = BatchOptions(batchSize: settings.batchSize, shuffle: true, dropLast: true,
                                   cropPadding: settings.cropPadding, horizontalFlip: settings.horizontalFlip)
        let stepsPerEpoch = options.batchCount(samples: train.count)
        precondition(stepsPerEpoch > 0, "Trainer: \(train.count) training samples is less than one batch of \(settings.batchSize)")
        let schedule = settings.lrSchedule(totalSteps: stepsPerEpoch * settings.epochs)
        let start = Date()
        var history: [(loss: Double, accuracy: Double)] = []
        var images = Tensor(shape: [0]), labels: [Int32] = []
        var lastTest = EvaluationResult(accuracy: 0, loss: 0, samples: 0)
        // Attack randomness has its own stream per step, so a run resumed at a step boundary
        // draws the same starts as an uninterrupted one.
        let attackStream = RNG(seed: settings.seed).fork(0xA77AC)
        for epoch in 0..<settings.epochs {
            var iterator = train.batches(options: options, seed: settings.seed, epoch: epoch)
            var lossSum = 0.0, correct = 0, seen = 0, step = 0
            let epochStart = Date()
            while iterator.next(into: &images, labels: &labels) {
                let t = epoch * stepsPerEpoch + step
                let lr = schedule.rate(at: t)
                if let m = schedule.momentum(at: t) { optimizer.settings.momentum = m }
                var attackRNG = attackStream.fork(UInt64(t))
                let inputs = settings.objective.trainingImages(model, images: images, labels: labels, rng: &attackRNG)
                optimizer.zeroGradients()
                let logits = model.forward(inputs, mode: .training)
                let loss = softmaxCrossEntropy(logits: logits, labels: labels)
                _ = model.backward(loss.gradient, parameterGradients: true)
                optimizer.step(lr: lr)
                for (p, y) in zip(argmaxRows(logits), labels) where p == y { correct += 1 }
                lossSum += Double(loss.value) * Double(labels.count)
                seen += labels.count
                step += 1
                progress(TrainingProgress(
                    epoch: epoch, step: step, stepsPerEpoch: stepsPerEpoch, epochs: settings.epochs,
                    loss: lossSum / Double(seen), accuracy: Double(correct) / Double(seen), learningRate: lr,
                    imagesPerSecond: Double(seen) / max(Date().timeIntervalSince(epochStart), 1e-9),
                    testAccuracy: nil, epochDone: false))
            }
            history.append((lossSum / Double(max(seen, 1)), Double(correct) / Double(max(seen, 1))))
            lastTest = evaluateAccuracy(model, on: test)
            progress(TrainingProgress(
                epoch: epoch, step: step, stepsPerEpoch: stepsPerEpoch, epochs: settings.epochs,
                loss: history.last!.loss, accuracy: history.last!.accuracy, learningRate: schedule.rate(at: (epoch + 1) * stepsPerEpoch - 1),
                imagesPerSecond: Double(seen) / max(Date().timeIntervalSince(epochStart), 1e-9),
                testAccuracy: lastTest.accuracy, epochDone: true))
        }
        return TrainingSummary(epochs: history, test: lastTest, seconds: Date().timeIntervalSince(start))
    }
}
