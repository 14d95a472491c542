import Foundation
import Models
import NN
import TensorCore

/// What an attack hands back for a batch.
public struct AttackResult {
    /// The adversarial images `[N, C, H, W]`, in [0, 1] and inside the epsilon-ball around x.
    public var adversarial: Tensor
    /// Cross-entropy of each example at `adversarial` `[N]`.
    public var loss: [Float]
    /// The network's prediction for each example at `adversarial` `[N]`.
    public var predictions: [Int32]
    /// Whether each example is misclassified at `adversarial` (the attack succeeded) `[N]`.
    public var success: [Bool]

    /// A result; `success` follows from `predictions` and `labels`.
    public init(adversarial: Tensor, loss: [Float], predictions: [Int32], labels: [Int32]) {
        precondition(
            loss.count == labels.count && predictions.count == labels.count,
            "AttackResult: \(labels.count) labels but \(loss.count) losses and \(predictions.count) predictions")
        self.adversarial = adversarial
        self.loss = loss
        self.predictions = predictions
        self.success = zip(predictions, labels).map { $0 != $1 }
    }

    /// Mean of `loss`.
    public var meanLoss: Double { loss.isEmpty ? 0 : loss.reduce(0.0) { $0 + Double($1) } / Double(loss.count) }

    /// Fraction of examples still classified correctly (robust accuracy on this batch).
    public var accuracy: Double {
        success.isEmpty ? 0 : Double(success.lazy.filter { !$0 }.count) / Double(success.count)
    }
}

/// Per-example softmax cross-entropy `[N]`, the arg-max predictions `[N]`, and the gradient of the
/// *sum* of the losses w.r.t. `logits` `[N, K]` (softmax minus one-hot). Attacks want each
/// example's own gradient: the mean's gradient would shrink with the batch size for no benefit.
public func perExampleCrossEntropy(
    logits: Tensor, labels: [Int32]
) -> (loss: [Float], predictions: [Int32], gradient: Tensor) {
    precondition(logits.rank == 2, "perExampleCrossEntropy: expected logits [N, K], got \(logits.shape)")
    let n = logits.dim(0)
    let k = logits.dim(1)
    precondition(labels.count == n, "perExampleCrossEntropy: logits \(logits.shape) but \(labels.count) labels")
    var grad = Tensor(uninitializedShape: logits.shape)  // [N, K]
    var loss = [Float](repeating: 0, count: n)
    var predictions = [Int32](repeating: 0, count: n)
    grad.withUnsafeMutablePointer { gp in
        logits.withUnsafePointer { lp in
            for i in 0..<n {
                let row = lp + i * k
                let g = gp + i * k
                let y = Int(labels[i])
                precondition(y >= 0 && y < k, "perExampleCrossEntropy: label \(y) outside 0..<\(k)")
                var best = 0
                for j in 1..<max(k, 1) where row[j] > row[best] { best = j }
                let m = row[best]
                var s = 0.0
                for j in 0..<k {
                    let e = exp(Double(row[j] - m))
                    g[j] = Float(e)
                    s += e
                }
                loss[i] = Float(log(s) + Double(m) - Double(row[y]))
                predictions[i] = Int32(best)
                let inv = Float(1 / s)
                for j in 0..<k { g[j] *= inv }
                g[y] -= 1
            }
        }
    }
    return (loss, predictions, grad)
}

/// Loss, predictions and dLoss/dx `[N, C, H, W]` of the frozen network at `x`: one inference
/// forward and one input-only backward for the whole batch.
public func inputGradient(
    _ network: Network, _ x: Tensor, labels: [Int32]
) -> (loss: [Float], predictions: [Int32], gradient: Tensor) {
    let logits = network.forward(x, mode: .inference)
    let ce = perExampleCrossEntropy(logits: logits, labels: labels)
    let dx = network.backward(logitsGradient: ce.gradient, representationGradient: nil, parameterGradients: false)
    return (ce.loss, ce.predictions, dx)
}

/// Loss and predictions of the frozen network at `x`, without a backward pass.
public func evaluateAttackLoss(
    _ network: Network, _ x: Tensor, labels: [Int32]
) -> (loss: [Float], predictions: [Int32]) {
    let ce = perExampleCrossEntropy(logits: network.forward(x, mode: .inference), labels: labels)
    return (ce.loss, ce.predictions)
}

/// Stops unless `x` is an image batch the network takes and `labels` has one label per image.
func checkAttackInput(_ name: String, _ network: Network, _ x: Tensor, _ labels: [Int32]) {
    precondition(
        x.rank == 4 && Array(x.shape.dropFirst()) == network.config.inputShape,
        "\(name): expected x [N, \(network.config.inputShape.map(String.init).joined(separator: ", "))], got \(x.shape)"
    )
    precondition(labels.count == x.dim(0), "\(name): x \(x.shape) but \(labels.count) labels")
}
