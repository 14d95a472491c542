import Foundation
import Models
import NN
import TensorCore

/// Settings of the Square attack; invalid values stop with a message.
public struct SquareConfig: Equatable, Sendable {
    /// L-inf radius in [0, 1] pixel units; >= 0.
    public var epsilon: Float
    /// Forward passes per image, the starting point included; >= 1. AutoAttack's standard: 5,000.
    public var queries: Int
    /// Share of the image's pixels the first squares cover (the paper's p_init, 0.8 for L-inf);
    /// it halves at fixed points of the query budget.
    public var initialFraction: Float

    /// A configuration; the values are checked here so an attack never runs with nonsense.
    public init(epsilon: Float, queries: Int = 5000, initialFraction: Float = 0.8) {
        precondition(epsilon >= 0 && epsilon.isFinite, "SquareConfig: epsilon must be finite and >= 0, got \(epsilon)")
        precondition(queries >= 1, "SquareConfig: queries must be >= 1, got \(queries)")
        precondition(
            initialFraction > 0 && initialFraction <= 1,
            "SquareConfig: initialFraction must be in (0, 1], got \(initialFraction)")
        self.epsilon = epsilon
        self.queries = queries
        self.initialFraction = initialFraction
    }
}

/// The Square attack (Andriushchenko et al. 2020), L-inf: a random search that never reads a
/// gradient. It starts from vertical stripes of +-epsilon and then, one query at a time, sets a
/// random square window of every channel to a random corner of the ball, keeping the change only
/// when the margin (true logit minus the best other) falls. Because it needs nothing but the
/// network's outputs, a model that is robust only because its gradients mislead (gradient
/// masking) falls to it while it stands against APGD; that is what rrmd uses it for.
public enum Square {
    /// Attacks x `[N, C, H, W]` in [0, 1] with labels `[N]`. An example leaves the search once it
    /// is misclassified. All randomness comes from `rng`, so the same generator state gives the
    /// same result.
    public static func attack(
        _ network: Network, x: Tensor, labels: [Int32], config: SquareConfig, rng: inout RNG
    ) -> AttackResult {
        checkAttackInput("Square", network, x, labels)
        if labels.isEmpty { return AttackResult(adversarial: x, loss: [], predictions: [], labels: []) }
        let n = x.dim(0)
        let (c, h, w) = (x.dim(1), x.dim(2), x.dim(3))
        let d = c * h * w
        let eps = config.epsilon

        // The starting point: each column of each channel moved by +-epsilon as a whole.
        var adv = x  // [N, C, H, W]
        adv.withUnsafeMutablePointer { ap in
            x.withUnsafePointer { xp in
                for e in 0..<n {
                    for ch in 0..<c {
                        for col in 0..<w {
                            let s: Float = rng.below(2) == 0 ? -eps : eps
                            for row in 0..<h {
                                let i = e * d + (ch * h + row) * w + col
                                ap[i] = min(max(xp[i] + s, 0), 1)
                            }
                        }
                    }
                }
            }
        }
        var state = score(network, adv, labels: labels)
        var active = (0..<n).filter { state.predictions[$0] == labels[$0] }  // still classified correctly
        // The start took the first query; step s of the search is query s + 2.
        var step = 0
        while step + 1 < config.queries && !active.isEmpty {
            let side = windowSide(step: step, of: config.queries, initialFraction: config.initialFraction, h: h, w: w)
            var candidate = adv.gather(rows: active)  // [M, C, H, W]
            candidate.withUnsafeMutablePointer { cp in
                x.withUnsafePointer { xp in
                    for (j, e) in active.enumerated() {
                        let top = rng.below(h - side + 1)
                        let left = rng.below(w - side + 1)
                        // A window already at the drawn corner would waste the query: draw again
                        // (a few times at most; clipping can make both corners equal).
                        var signs = [Float](repeating: 0, count: c)
                        for _ in 0..<10 {
                            for ch in 0..<c { signs[ch] = rng.below(2) == 0 ? -eps : eps }
                            if windowChanges(cp + j * d, xp + e * d, signs, top, left, side, h, w) { break }
                        }
                        for ch in 0..<c {
                            for row in top..<top + side {
                                for col in left..<left + side {
                                    let o = (ch * h + row) * w + col
                                    cp[j * d + o] = min(max(xp[e * d + o] + signs[ch], 0), 1)
                                }
                            }
                        }
                    }
                }
            }
            let trial = score(network, candidate, labels: active.map { labels[$0] })
            adv.withUnsafeMutablePointer { ap in
                candidate.withUnsafePointer { cp in
                    for (j, e) in active.enumerated()
                    where trial.margin[j] < state.margin[e] || trial.predictions[j] != labels[e] {
                        (ap + e * d).update(from: cp + j * d, count: d)
                        state.margin[e] = trial.margin[j]
                        state.loss[e] = trial.loss[j]
                        state.predictions[e] = trial.predictions[j]
                    }
                }
            }
            active.removeAll { state.predictions[$0] != labels[$0] }
            step += 1
        }
        return AttackResult(adversarial: adv, loss: state.loss, predictions: state.predictions, labels: labels)
    }

    /// Side of the square window at search step `step` (0-based, after the start) of a
    /// `budget`-query run:
    /// the paper's schedule, which halves the covered share at 10, 50, 200, 500, 1000, 2000,
    /// 4000, 6000 and 8000 queries of a 10,000-query run and scales those points to other
    /// budgets; at least one pixel, at most the image.
    public static func windowSide(step: Int, of budget: Int, initialFraction: Float, h: Int, w: Int) -> Int {
        let scaled = Int(Double(step) * 10_000 / Double(budget))
        let halvings = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000].filter { scaled > $0 }.count
        let share = Double(initialFraction) / Double(1 << halvings)
        let side = Int((share * Double(h * w)).squareRoot().rounded())
        return min(max(side, 1), min(h, w))
    }

    /// Whether setting the window of every channel to `x + signs[ch]` (clipped) changes `current`.
    static func windowChanges(
        _ current: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ signs: [Float],
        _ top: Int, _ left: Int, _ side: Int, _ h: Int, _ w: Int
    ) -> Bool {
        for ch in 0..<signs.count {
            for row in top..<top + side {
                for col in left..<left + side {
                    let o = (ch * h + row) * w + col
                    if current[o] != min(max(x[o] + signs[ch], 0), 1) { return true }
                }
            }
        }
        return false
    }

    /// Per example of a batch: the margin (true logit minus the largest other, at most 0 once
    /// the prediction is another class, which a tie can make it), the cross-entropy and the
    /// prediction.
    static func score(
        _ network: Network, _ x: Tensor, labels: [Int32]
    ) -> (margin: [Float], loss: [Float], predictions: [Int32]) {
        let logits = network.forward(x, mode: .inference)  // [M, K]
        let k = logits.dim(1)
        let ce = perExampleCrossEntropy(logits: logits, labels: labels)
        var margin = [Float](repeating: 0, count: labels.count)
        logits.withUnsafePointer { lp in
            for (i, y) in labels.enumerated() {
                let row = lp + i * k
                var other = -Float.infinity
                for j in 0..<k where j != Int(y) { other = max(other, row[j]) }
                margin[i] = ce.predictions[i] == y ? row[Int(y)] - other : min(row[Int(y)] - other, 0)
            }
        }
        return (margin, ce.loss, ce.predictions)
    }
}
