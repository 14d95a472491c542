import TensorCore

/// One minibatch replay's perturbation step (Free-AT, Shafahi et al. 2019): `current`
/// `[N, C, H, W]` moved by `step` (default `epsilon`, Free-AT's) along the sign of `gradient`
/// (dLoss/dinput at `current`), projected into the L-inf ball of radius `epsilon` around `clean`
/// and into [0, 1]. The perturbation restarts from the clean batch at every batch (the original
/// carries it over).
func replayStep(clean: Tensor, current: Tensor, gradient: Tensor, epsilon e: Float, step s: Float? = nil) -> Tensor {
    clean.expectShape(current.shape, "replayStep current")
    clean.expectShape(gradient.shape, "replayStep gradient")
    var next = Tensor(uninitializedShape: clean.shape)
    let n = clean.count
    let a = s ?? e
    next.withUnsafeMutablePointer { o in
        clean.withUnsafePointer { x in
            current.withUnsafePointer { c in
                gradient.withUnsafePointer { g in
                    for i in 0..<n {
                        let step = g[i] > 0 ? a : (g[i] < 0 ? -a : 0)
                        o[i] = min(max(min(max(c[i] + step, x[i] - e), x[i] + e), 0), 1)
                    }
                }
            }
        }
    }
    return next
}
