import Foundation
import TensorCore

/// Loss value and its gradient with respect to the input it was computed from.
public struct LossResult {
    /// Mean loss over the batch.
    public var value: Float
    /// dLoss/dInput, same shape as the input.
    public var gradient: Tensor
}

/// Mean softmax cross-entropy of `logits` `[N, K]` against integer `labels` (PyTorch's
/// `F.cross_entropy`), computed with the log-sum-exp shift so large logits do not overflow.
public func softmaxCrossEntropy(logits: Tensor, labels: [Int32]) -> LossResult {
    expectRank(logits, 2, "softmaxCrossEntropy")
    let n = logits.dim(0)
    let k = logits.dim(1)
    precondition(labels.count == n, "softmaxCrossEntropy: \(n) rows of logits but \(labels.count) labels")
    var grad = Tensor(uninitializedShape: logits.shape)
    var total = 0.0
    grad.withUnsafeMutablePointer { gp in
        logits.withUnsafePointer { lp in
            for i in 0..<n {
                let row = lp + i * k
                let g = gp + i * k
                let y = Int(labels[i])
                precondition(y >= 0 && y < k, "softmaxCrossEntropy: label \(y) outside 0..<\(k)")
                var m = -Float.infinity
                for j in 0..<k { m = max(m, row[j]) }
                var s = 0.0
                for j in 0..<k {
                    let e = exp(Double(row[j] - m))
                    g[j] = Float(e)
                    s += e
                }
                total += log(s) + Double(m) - Double(row[y])
                let scale = Float(1 / (s * Double(n)))
                for j in 0..<k { g[j] *= scale }
                g[y] -= 1 / Float(n)
            }
        }
    }
    return LossResult(value: Float(total / Double(n)), gradient: grad)
}

/// Index of the largest logit of each row of `[N, K]` logits (ties go to the first).
public func argmaxRows(_ logits: Tensor) -> [Int32] {
    expectRank(logits, 2, "argmaxRows")
    let n = logits.dim(0)
    let k = logits.dim(1)
    return logits.withUnsafePointer { lp in
        (0..<n).map { i in
            var best = 0
            for j in 1..<max(k, 1) where lp[i * k + j] > lp[i * k + best] { best = j }
            return Int32(best)
        }
    }
}
