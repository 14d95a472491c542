import Models
import NN
import TensorCore

/// Fast Gradient Sign Method (Goodfellow et al. 2015): one L-inf step of size epsilon.
public enum FGSM {
    /// `clip(x + epsilon * sign(dL/dx), 0, 1)` for the frozen `network` (inference mode).
    /// x `[N, C, H, W]` in [0, 1], labels `[N]`; epsilon >= 0 in pixel units.
    public static func attack(_ network: Network, x: Tensor, labels: [Int32], epsilon: Float) -> AttackResult {
        checkAttackInput("FGSM", network, x, labels)
        precondition(epsilon >= 0 && epsilon.isFinite, "FGSM: epsilon must be finite and >= 0, got \(epsilon)")
        if labels.isEmpty { return AttackResult(adversarial: x, loss: [], predictions: [], labels: []) }
        let g = inputGradient(network, x, labels: labels).gradient
        var adv = x
        let n = adv.count
        adv.withUnsafeMutablePointer { ap in
            g.withUnsafePointer { gp in
                // sign(0) = 0: a pixel with no gradient has no direction to move in.
                for i in 0..<n {
                    let s: Float = gp[i] > 0 ? 1 : (gp[i] < 0 ? -1 : 0)
                    ap[i] = min(max(ap[i] + epsilon * s, 0), 1)
                }
            }
        }
        let e = evaluateAttackLoss(network, adv, labels: labels)
        return AttackResult(adversarial: adv, loss: e.loss, predictions: e.predictions, labels: labels)
    }
}
