import Foundation
import Kernels
import Models
import NN
import TensorCore

/// Settings of a projected-gradient-descent attack; invalid values stop with a message.
public struct PGDConfig: Equatable, Sendable {
    /// Norm of the threat model.
    public var norm: ThreatNorm
    /// Radius of the ball, in [0, 1] pixel units (e.g. 8/255 L-inf, 0.5 L2); >= 0.
    public var epsilon: Float
    /// Length of one step in the same units (L-inf: per pixel; L2: per example); > 0.
    public var stepSize: Float
    /// Gradient steps per restart; >= 0.
    public var iterations: Int
    /// Independent runs; each example keeps its worst case over them; >= 1.
    public var restarts: Int
    /// Whether each run starts from a random point of the ball instead of x itself.
    public var randomStart: Bool

    /// A configuration; the values are checked here so an attack never runs with nonsense.
    public init(
        norm: ThreatNorm, epsilon: Float, stepSize: Float, iterations: Int, restarts: Int = 1, randomStart: Bool = true
    ) {
        precondition(epsilon >= 0 && epsilon.isFinite, "PGDConfig: epsilon must be finite and >= 0, got \(epsilon)")
        precondition(stepSize > 0 && stepSize.isFinite, "PGDConfig: step size must be finite and > 0, got \(stepSize)")
        precondition(iterations >= 0, "PGDConfig: iterations must be >= 0, got \(iterations)")
        precondition(restarts >= 1, "PGDConfig: restarts must be >= 1, got \(restarts)")
        self.norm = norm
        self.epsilon = epsilon
        self.stepSize = stepSize
        self.iterations = iterations
        self.restarts = restarts
        self.randomStart = randomStart
    }

    /// Madry et al.'s recipe: step 2.5 * epsilon / iterations, so a run can cross the ball and back.
    public static func standard(norm: ThreatNorm, epsilon: Float, iterations: Int = 10, restarts: Int = 1) -> PGDConfig
    {
        PGDConfig(
            norm: norm, epsilon: epsilon,
            stepSize: max(2.5 * epsilon / Float(max(iterations, 1)), Float.leastNormalMagnitude),
            iterations: iterations, restarts: restarts, randomStart: true)
    }
}

/// Projected gradient descent (Madry et al. 2018) on the cross-entropy, L-inf or L2, with random
/// starts and restarts; the network is frozen (inference mode).
public enum PGD {
    /// Attacks x `[N, C, H, W]` in [0, 1] with labels `[N]`. Each run returns its last iterate;
    /// across restarts an example keeps the run that misclassifies it, else the one with the
    /// highest loss. All randomness comes from `rng`, drawn run by run, so the first run with
    /// `restarts: k` is the run with `restarts: 1` from the same generator state.
    public static func attack(
        _ network: Network, x: Tensor, labels: [Int32], config: PGDConfig, rng: inout RNG
    ) -> AttackResult {
        checkAttackInput("PGD", network, x, labels)
        if labels.isEmpty { return AttackResult(adversarial: x, loss: [], predictions: [], labels: []) }
        var best = singleRun(network, x: x, labels: labels, config: config, rng: &rng)
        for _ in 1..<config.restarts {
            let run = singleRun(network, x: x, labels: labels, config: config, rng: &rng)
            merge(into: &best, run, perExample: x.count / x.dim(0))
        }
        return best
    }

    /// Whether a run's outcome for one example beats another: fooling the network first, then loss.
    @inline(__always) static func stronger(
        _ aSuccess: Bool, _ aLoss: Float, than bSuccess: Bool, _ bLoss: Float
    ) -> Bool {
        aSuccess != bSuccess ? aSuccess : aLoss > bLoss
    }

    /// Copies into `best` every example where `run` is stronger.
    static func merge(into best: inout AttackResult, _ run: AttackResult, perExample d: Int) {
        let n = best.loss.count
        best.adversarial.withUnsafeMutablePointer { bp in
            run.adversarial.withUnsafePointer { rp in
                for i in 0..<n where stronger(run.success[i], run.loss[i], than: best.success[i], best.loss[i]) {
                    (bp + i * d).update(from: rp + i * d, count: d)
                    best.loss[i] = run.loss[i]
                    best.predictions[i] = run.predictions[i]
                    best.success[i] = run.success[i]
                }
            }
        }
    }

    /// One run from a (random) start: `iterations` steps, each one forward + backward for the batch.
    static func singleRun(
        _ network: Network, x: Tensor, labels: [Int32], config: PGDConfig, rng: inout RNG
    ) -> AttackResult {
        let n = x.dim(0)
        let total = x.count
        let d = total / max(n, 1)
        let eps = config.epsilon
        var adv = x  // [N, C, H, W]; x + delta, always inside the ball and [0, 1]
        if config.randomStart {
            var delta = Tensor(uninitializedShape: x.shape)  // [N, C, H, W]
            delta.withUnsafeMutablePointer { dp in
                switch config.norm {
                case .linf:
                    for i in 0..<total { dp[i] = rng.uniform(-eps, eps) }
                case .l2:
                    // Uniform in the ball's volume: a Gaussian direction, radius eps * u^(1/d).
                    for e in 0..<n {
                        let p = dp + e * d
                        for i in 0..<d { p[i] = rng.normal() }
                        let norm = Double(Vector.dot(p, p, d)).squareRoot()
                        let radius = Double(eps) * pow(Double(rng.uniform()), 1 / Double(d))
                        Vector.scale(p, norm > 0 ? Float(radius / norm) : 0, d)
                    }
                }
            }
            project(&adv, x: x, direction: delta, scale: 1, config: config, n: n, d: d)
        }
        for _ in 0..<config.iterations {
            var g = inputGradient(network, adv, labels: labels).gradient
            switch config.norm {
            case .linf:
                g.withUnsafeMutablePointer { gp in
                    for i in 0..<total { gp[i] = gp[i] > 0 ? 1 : (gp[i] < 0 ? -1 : 0) }
                }
            case .l2:
                // Steepest ascent under L2 is the per-example normalised gradient.
                g.withUnsafeMutablePointer { gp in
                    for e in 0..<n {
                        let p = gp + e * d
                        let norm = Double(Vector.dot(p, p, d)).squareRoot()
                        Vector.scale(p, norm > 0 ? Float(1 / norm) : 0, d)
                    }
                }
            }
            project(&adv, x: x, direction: g, scale: config.stepSize, config: config, n: n, d: d)
        }
        let e = evaluateAttackLoss(network, adv, labels: labels)
        return AttackResult(adversarial: adv, loss: e.loss, predictions: e.predictions, labels: labels)
    }

    /// `adv = clip(x + P_eps(adv + scale * direction - x), 0, 1)`. Clipping to [0, 1] after the
    /// ball projection only moves pixels toward x, so the result stays inside the ball.
    static func project(
        _ adv: inout Tensor, x: Tensor, direction: Tensor, scale: Float, config: PGDConfig, n: Int, d: Int
    ) {
        let total = adv.count
        let eps = config.epsilon
        adv.withUnsafeMutablePointer { ap in
            x.withUnsafePointer { xp in
                direction.withUnsafePointer { gp in
                    switch config.norm {
                    case .linf:
                        for i in 0..<total {
                            let delta = min(max(ap[i] + scale * gp[i] - xp[i], -eps), eps)
                            ap[i] = min(max(xp[i] + delta, 0), 1)
                        }
                    case .l2:
                        for e in 0..<n {
                            let a = ap + e * d
                            let xe = xp + e * d
                            let ge = gp + e * d
                            var sq = 0.0
                            for i in 0..<d {
                                let delta = a[i] + scale * ge[i] - xe[i]
                                a[i] = delta  // holds delta until the example is finished
                                sq += Double(delta) * Double(delta)
                            }
                            let norm = sq.squareRoot()
                            // Shrink by a hair more than eps/norm so Float rounding cannot leave it outside.
                            let f: Float = norm > Double(eps) ? Float(Double(eps) / norm * (1 - 1e-6)) : 1
                            for i in 0..<d { a[i] = min(max(xe[i] + a[i] * f, 0), 1) }
                        }
                    }
                }
            }
        }
    }
}
