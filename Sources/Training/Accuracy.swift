import Data
import Models
import NN
import TensorCore

/// Accuracy and mean loss of a model on a dataset.
public struct EvaluationResult: Codable, Equatable, Sendable {
    /// Fraction of correctly classified samples.
    public var accuracy: Double
    /// Mean cross-entropy.
    public var loss: Double
    /// Number of samples.
    public var samples: Int
}

/// Evaluates `model` in inference mode on all of `dataset`, in batches.
public func evaluateAccuracy(_ model: Network, on dataset: Dataset, batchSize: Int = 256) -> EvaluationResult {
    var iterator = dataset.batches(options: .evaluation(batchSize: batchSize), seed: 0, epoch: 0)
    var images = Tensor(shape: [0])
    var labels: [Int32] = []
    var correct = 0
    var lossSum = 0.0
    var seen = 0
    while iterator.next(into: &images, labels: &labels) {
        let logits = model.forward(images, mode: .inference)
        let loss = softmaxCrossEntropy(logits: logits, labels: labels)
        for (p, y) in zip(argmaxRows(logits), labels) where p == y { correct += 1 }
        lossSum += Double(loss.value) * Double(labels.count)
        seen += labels.count
    }
    return EvaluationResult(
        accuracy: seen > 0 ? Double(correct) / Double(seen) : 0,
        loss: seen > 0 ? lossSum / Double(seen) : 0, samples: seen)
}
