import Foundation
import TensorCore

// The Difference of Logits Ratio loss of Croce & Hein (ICML 2020). Dividing the margin by the
// spread of the top logits makes the loss invariant to shifting and rescaling the logits, so a
// network cannot hide from the attack by saturating its softmax (where cross-entropy's gradient
// vanishes). Both versions are written so that *larger is better for the attacker*, like the
// cross-entropy the other attacks ascend.

/// Per-example untargeted DLR loss `-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12)` `[N]`,
/// the arg-max predictions `[N]`, and the gradient of the *sum* of the losses w.r.t. `logits`
/// `[N, K]`, where pi sorts each row's logits in descending order (ties: lower index first).
/// Needs K >= 3. At ties between logits the loss is not differentiable and the gradient returned
/// is the one of the order chosen by the tie rule.
public func perExampleDLR(logits: Tensor, labels: [Int32]) -> (loss: [Float], predictions: [Int32], gradient: Tensor) {
    precondition(logits.rank == 2, "perExampleDLR: expected logits [N, K], got \(logits.shape)")
    let n = logits.dim(0)
    let k = logits.dim(1)
    precondition(labels.count == n, "perExampleDLR: logits \(logits.shape) but \(labels.count) labels")
    precondition(
        k >= 3,
        "perExampleDLR: the DLR loss divides by z_pi1 - z_pi3 and needs at least 3 classes, got logits \(logits.shape)")
    var grad = Tensor(uninitializedShape: logits.shape)  // [N, K]
    var loss = [Float](repeating: 0, count: n)
    var predictions = [Int32](repeating: 0, count: n)
    grad.withUnsafeMutablePointer { gp in
        logits.withUnsafePointer { lp in
            for i in 0..<n {
                let y = Int(labels[i])
                precondition(y >= 0 && y < k, "perExampleDLR: label \(y) outside 0..<\(k)")
                let r = DLRKernel.untargeted(lp + i * k, k, y, gp + i * k)
                loss[i] = r.loss
                predictions[i] = r.prediction
            }
        }
    }
    return (loss, predictions, grad)
}

/// Per-example targeted DLR loss in AutoAttack's form,
/// `-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)` `[N]`, the arg-max predictions `[N]`,
/// and the gradient of the *sum* of the losses w.r.t. `logits` `[N, K]`; `targets` `[N]` holds
/// the class t each example is pushed towards. Needs K >= 4. Ties as in `perExampleDLR`.
public func perExampleTargetedDLR(
    logits: Tensor, labels: [Int32], targets: [Int32]
) -> (loss: [Float], predictions: [Int32], gradient: Tensor) {
    precondition(logits.rank == 2, "perExampleTargetedDLR: expected logits [N, K], got \(logits.shape)")
    let n = logits.dim(0)
    let k = logits.dim(1)
    precondition(
        labels.count == n && targets.count == n,
        "perExampleTargetedDLR: logits \(logits.shape) but \(labels.count) labels and \(targets.count) targets")
    precondition(
        k >= 4,
        "perExampleTargetedDLR: the targeted DLR loss uses z_pi4 and needs at least 4 classes, got logits "
            + "\(logits.shape)"
    )
    var grad = Tensor(uninitializedShape: logits.shape)  // [N, K]
    var loss = [Float](repeating: 0, count: n)
    var predictions = [Int32](repeating: 0, count: n)
    grad.withUnsafeMutablePointer { gp in
        logits.withUnsafePointer { lp in
            for i in 0..<n {
                let y = Int(labels[i])
                let t = Int(targets[i])
                precondition(y >= 0 && y < k, "perExampleTargetedDLR: label \(y) outside 0..<\(k)")
                precondition(t >= 0 && t < k, "perExampleTargetedDLR: target \(t) outside 0..<\(k)")
                let r = DLRKernel.targeted(lp + i * k, k, y, t, gp + i * k)
                loss[i] = r.loss
                predictions[i] = r.prediction
            }
        }
    }
    return (loss, predictions, grad)
}

/// Row kernels shared by the public functions and APGD's inner loop, which calls them on its own
/// reused buffers instead of allocating per iteration.
enum DLRKernel {
    /// Indices of the four largest entries of `row` `[k]`, largest first; ties go to the lower
    /// index so that the first one agrees with the arg-max used for predictions. Slots beyond k
    /// are -1. One pass with insertion into four slots: K is small and a full sort would allocate.
    @inline(__always)
    static func top4(_ row: UnsafePointer<Float>, _ k: Int) -> (Int, Int, Int, Int) {
        var i0 = -1
        var i1 = -1
        var i2 = -1
        var i3 = -1
        var v0 = -Float.infinity
        var v1 = -Float.infinity
        var v2 = -Float.infinity
        var v3 = -Float.infinity
        for j in 0..<k {
            let v = row[j]
            // Strict '>' keeps an earlier index ahead of a later equal value; the `i == -1` checks
            // let -inf logits still fill a slot.
            if v > v0 || i0 == -1 {
                (i3, v3) = (i2, v2)
                (i2, v2) = (i1, v1)
                (i1, v1) = (i0, v0)
                (i0, v0) = (j, v)
            } else if v > v1 || i1 == -1 {
                (i3, v3) = (i2, v2)
                (i2, v2) = (i1, v1)
                (i1, v1) = (j, v)
            } else if v > v2 || i2 == -1 {
                (i3, v3) = (i2, v2)
                (i2, v2) = (j, v)
            } else if v > v3 || i3 == -1 {
                (i3, v3) = (j, v)
            }
        }
        return (i0, i1, i2, i3)
    }

    /// Untargeted DLR of one row `[k]` (k >= 3) and its gradient into `grad` `[k]`.
    @inline(__always)
    static func untargeted(
        _ row: UnsafePointer<Float>, _ k: Int, _ y: Int,
        _ grad: UnsafeMutablePointer<Float>
    ) -> (loss: Float, prediction: Int32) {
        let (p1, p2, p3, _) = top4(row, k)
        // The strongest other class: the runner-up when y leads, else the leader.
        let m = p1 == y ? p2 : p1
        let a = Double(row[y]) - Double(row[m])  // margin; the loss is -a / b
        let b = Double(row[p1]) - Double(row[p3]) + 1e-12  // spread of the top three, > 0
        // dL/dz = -(da/dz) / b + (a / b^2) (db/dz), with da = e_y - e_m and db = e_p1 - e_p3.
        // Indices may coincide (y == p1, m == p1, ...), so contributions are added, not set.
        let ga = Float(-1 / b)
        let gb = Float(a / (b * b))
        for j in 0..<k { grad[j] = 0 }
        grad[y] += ga
        grad[m] -= ga
        grad[p1] += gb
        grad[p3] -= gb
        return (Float(-a / b), Int32(p1))
    }

    /// Targeted DLR of one row `[k]` (k >= 4) towards class t and its gradient into `grad` `[k]`.
    @inline(__always)
    static func targeted(
        _ row: UnsafePointer<Float>, _ k: Int, _ y: Int, _ t: Int,
        _ grad: UnsafeMutablePointer<Float>
    ) -> (loss: Float, prediction: Int32) {
        let (p1, _, p3, p4) = top4(row, k)
        let a = Double(row[y]) - Double(row[t])
        // z_pi1 >= z_pi3 >= z_pi4, so b > 0.
        let b = Double(row[p1]) - 0.5 * (Double(row[p3]) + Double(row[p4])) + 1e-12
        // da = e_y - e_t, db = e_p1 - (e_p3 + e_p4) / 2.
        let ga = Float(-1 / b)
        let gb = Float(a / (b * b))
        for j in 0..<k { grad[j] = 0 }
        grad[y] += ga
        grad[t] -= ga
        grad[p1] += gb
        grad[p3] -= 0.5 * gb
        grad[p4] -= 0.5 * gb
        return (Float(-a / b), Int32(p1))
    }

    /// Cross-entropy of one row `[k]` at label y with its softmax-minus-one-hot gradient into
    /// `grad` `[k]`; the same arithmetic as `perExampleCrossEntropy`, so the values agree bit for
    /// bit. It lives here so APGD's loop can switch between its losses on the same buffers.
    @inline(__always)
    static func crossEntropy(
        _ row: UnsafePointer<Float>, _ k: Int, _ y: Int,
        _ grad: UnsafeMutablePointer<Float>
    ) -> (loss: Float, prediction: Int32) {
        var best = 0
        for j in 1..<max(k, 1) where row[j] > row[best] { best = j }
        let m = row[best]
        var s = 0.0
        for j in 0..<k {
            let e = exp(Double(row[j] - m))
            grad[j] = Float(e)
            s += e
        }
        let inv = Float(1 / s)
        for j in 0..<k { grad[j] *= inv }
        grad[y] -= 1
        return (Float(log(s) + Double(m) - Double(row[y])), Int32(best))
    }
}
