import Foundation
import Kernels
import Models
import NN
import TensorCore

/// Settings of an Auto-PGD attack (Croce & Hein, ICML 2020); invalid values stop with a message.
/// APGD needs no step size: it starts at 2 * epsilon and halves it per example when progress stalls.
public struct APGDConfig: Equatable, Sendable {
    /// The loss APGD ascends. Whatever it ascends, `AttackResult.loss` reports cross-entropy.
    public enum Loss: String, CaseIterable, Sendable {
        /// Cross-entropy w.r.t. the true label (AutoAttack's APGD-CE).
        case crossEntropy
        /// Untargeted DLR (AutoAttack's APGD-DLR); needs >= 3 classes.
        case dlr
        /// Targeted DLR, one pass per target class (AutoAttack's APGD-T); needs >= 4 classes.
        case targetedDLR
    }

    /// Norm of the threat model.
    public var norm: ThreatNorm
    /// Radius of the ball, in [0, 1] pixel units (e.g. 8/255 L-inf, 0.5 L2); >= 0.
    public var epsilon: Float
    /// Iterations per run (N_iter); each costs one forward and one input-only backward; >= 0.
    public var iterations: Int
    /// Runs per target class (per attack when untargeted), each from its own random start; >= 1.
    public var restarts: Int
    /// The loss ascended.
    public var loss: Loss
    /// For `.targetedDLR`: how many target classes, taken as the 2nd, 3rd, ... highest-scoring
    /// classes at the clean point; 1...K-1 (checked against K at attack time). Ignored otherwise.
    public var targetClasses: Int
    /// Condition 1 threshold: the step halves when fewer than `rho` of the steps since the last
    /// checkpoint raised the loss; in [0, 1].
    public var rho: Float
    /// Weight alpha of the new gradient step against the previous displacement (1 - alpha is the
    /// momentum); in (0, 1], 1 meaning no momentum.
    public var momentum: Float
    /// Whether an example leaves the run at the first iterate that misclassifies it, which is then
    /// its answer. An example counts as fooled when any iterate misclassifies it and the others'
    /// iterates do not depend on it, so which are fooled stays the same; the batch shrinks as
    /// examples fall, which saves their iterations. (A smaller batch may round the network's sums
    /// differently in the last bits: L-inf's sign steps absorb that, L2's steps carry it.) Off, a
    /// fooled example is attacked to the end of the run and keeps its highest-loss misclassifying
    /// iterate (Algorithm 1 as written), which callers that use the adversarial images themselves
    /// want. Evaluations, which count the fooled, turn it on.
    public var stopWhenFooled: Bool

    /// A configuration with the paper's defaults (100 iterations, rho 0.75, alpha 0.75, 9 targets).
    public init(
        norm: ThreatNorm, epsilon: Float, iterations: Int = 100, restarts: Int = 1, loss: Loss = .crossEntropy,
        targetClasses: Int = 9, rho: Float = 0.75, momentum: Float = 0.75, stopWhenFooled: Bool = false
    ) {
        precondition(epsilon >= 0 && epsilon.isFinite, "APGDConfig: epsilon must be finite and >= 0, got \(epsilon)")
        precondition(iterations >= 0, "APGDConfig: iterations must be >= 0, got \(iterations)")
        precondition(restarts >= 1, "APGDConfig: restarts must be >= 1, got \(restarts)")
        precondition(targetClasses >= 1, "APGDConfig: targetClasses must be >= 1, got \(targetClasses)")
        precondition(rho >= 0 && rho <= 1, "APGDConfig: rho must be in [0, 1], got \(rho)")
        precondition(momentum > 0 && momentum <= 1, "APGDConfig: momentum alpha must be in (0, 1], got \(momentum)")
        self.norm = norm
        self.epsilon = epsilon
        self.iterations = iterations
        self.restarts = restarts
        self.loss = loss
        self.targetClasses = targetClasses
        self.rho = rho
        self.momentum = momentum
        self.stopWhenFooled = stopWhenFooled
    }

    /// The iterations after which step sizes are reviewed: w_j = ceil(p_j * N_iter) with p_0 = 0,
    /// p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), for p_j <= 1, without
    /// repeats. p is kept in integer hundredths so that 0.22 * 100 is exactly 22, not 22.000...04
    /// whose ceiling would be 23. w_0 = 0 is the start and is not returned.
    public var checkpoints: [Int] {
        var out: [Int] = []
        var previous = 0
        var current = 22  // p_{j-1}, p_j in hundredths
        while current <= 100 {
            let w = (current * iterations + 99) / 100
            if w > 0 && w != out.last { out.append(w) }
            (previous, current) = (current, current + max(current - previous - 3, 6))
        }
        return out
    }
}

/// Auto-PGD (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
/// diverse parameter-free attacks", ICML 2020, Algorithm 1): PGD with momentum whose step size
/// starts at 2 * epsilon and is halved per example at checkpoints when progress stalls, L-inf or
/// L2, against the frozen network (inference mode).
///
/// What is returned, per example (x `[N, C, H, W]`, every array `[N]`):
/// - examples the network already misclassifies at x are returned as x and not attacked
///   (AutoAttack skips them too): there is nothing left to find;
/// - otherwise, over the runs (restarts, and target classes for APGD-T) and the clean point,
///   the point that misclassifies if any iterate of any run did, else the highest-cross-entropy
///   one (PGD's merge rule);
/// - within a run everything is judged by the loss the run ascends: the misclassifying iterate
///   kept is the one with the highest such loss, and a run that never misclassifies offers its
///   best point by that loss (x_max of the paper);
/// - like AutoAttack, a run attacks only the examples still classified correctly after the
///   previous runs (a smaller batch, so later restarts and target classes cost less), so an
///   example that is fooled keeps the point of the first run that fooled it.
public enum APGD {
    /// Attacks x `[N, C, H, W]` in [0, 1] with labels `[N]`. All randomness (the random starts)
    /// comes from `rng`, drawn run by run, so the same generator state gives the same result.
    public static func attack(
        _ network: Network, x: Tensor, labels: [Int32], config: APGDConfig, rng: inout RNG
    ) -> AttackResult {
        checkAttackInput("APGD", network, x, labels)
        if labels.isEmpty { return AttackResult(adversarial: x, loss: [], predictions: [], labels: []) }
        let n = x.dim(0)
        let d = x.count / n
        let logits = network.forward(x, mode: .inference)  // [N, K]
        let k = logits.dim(1)
        switch config.loss {
        case .crossEntropy: break
        case .dlr:
            precondition(k >= 3, "APGD: the DLR loss needs at least 3 classes, the network has \(k)")
        case .targetedDLR:
            precondition(k >= 4, "APGD: the targeted DLR loss needs at least 4 classes, the network has \(k)")
            precondition(
                config.targetClasses <= k - 1,
                "APGD: targetClasses \(config.targetClasses) but a \(k)-class network has only \(k - 1) classes "
                    + "besides the top one"
            )
        }
        let clean = perExampleCrossEntropy(logits: logits, labels: labels)
        var best = AttackResult(adversarial: x, loss: clean.loss, predictions: clean.predictions, labels: labels)

        // ranking[e * K + r]: the class at rank r of example e's clean logits, descending, ties to
        // the lower index so rank 0 is the prediction. Only APGD-T needs it.
        var ranking: [Int32] = []  // [N * K]
        if config.loss == .targetedDLR {
            ranking = [Int32](repeating: 0, count: n * k)
            logits.withUnsafePointer { lp in
                var order = [Int](repeating: 0, count: k)  // [K]
                for e in 0..<n {
                    let row = lp + e * k
                    for j in 0..<k { order[j] = j }
                    order.sort { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }
                    for r in 0..<k { ranking[e * k + r] = Int32(order[r]) }
                }
            }
        }

        let passes = config.loss == .targetedDLR ? config.targetClasses : 1
        for pass in 1...passes {
            for _ in 0..<config.restarts {
                // Only examples the network still gets right are worth another run.
                let active = (0..<n).filter { !best.success[$0] }  // [M]
                if active.isEmpty { return best }
                let subLabels = active.map { labels[$0] }  // [M]
                // Every active example is classified correctly at x, so its rank-`pass` class
                // is never its label.
                let subTargets: [Int32]? = config.loss == .targetedDLR ? active.map { ranking[$0 * k + pass] } : nil
                let subX = active.count == n ? x : gather(x, rows: active, perExample: d)  // [M, C, H, W]
                let run = singleRun(network, x: subX, labels: subLabels, targets: subTargets, config: config, rng: &rng)
                merge(into: &best, run, rows: active, perExample: d)
            }
        }
        return best
    }

    /// Rows `rows` of x `[N, ...]` as a new batch `[rows.count, ...]`.
    static func gather(_ x: Tensor, rows: [Int], perExample d: Int) -> Tensor {
        var out = Tensor(uninitializedShape: [rows.count] + Array(x.shape.dropFirst()))
        out.withUnsafeMutablePointer { op in
            x.withUnsafePointer { xp in
                for (j, i) in rows.enumerated() { (op + j * d).update(from: xp + i * d, count: d) }
            }
        }
        return out
    }

    /// PGD's merge rule for a run over the subset `rows` of the batch: row j of `run` is example
    /// rows[j] of `best`, which takes it when it is stronger (fools the network, else higher loss).
    static func merge(into best: inout AttackResult, _ run: AttackResult, rows: [Int], perExample d: Int) {
        best.adversarial.withUnsafeMutablePointer { bp in
            run.adversarial.withUnsafePointer { rp in
                for (j, i) in rows.enumerated()
                where PGD.stronger(run.success[j], run.loss[j], than: best.success[i], best.loss[i]) {
                    (bp + i * d).update(from: rp + j * d, count: d)
                    best.loss[i] = run.loss[j]
                    best.predictions[i] = run.predictions[j]
                    best.success[i] = run.success[j]
                }
            }
        }
    }

    /// One run of Algorithm 1 over a batch in which every example is classified correctly at x:
    /// random start, `iterations` steps with per-example step sizes, checkpoints. Returns per
    /// example the best misclassifying iterate if there was one, else x_max, with its
    /// cross-entropy and prediction. With `config.stopWhenFooled` an example leaves the batch at
    /// its first misclassifying iterate.
    static func singleRun(
        _ network: Network, x: Tensor, labels: [Int32], targets: [Int32]?,
        config: APGDConfig, rng: inout RNG
    ) -> AttackResult {
        let n = x.dim(0)
        let d = x.count / n
        let eps = config.epsilon
        let iterations = config.iterations
        let checkpoints = config.checkpoints

        // The examples still attacked: row j of every per-example state below belongs to example
        // index[j] of the batch. Without stopWhenFooled it stays 0..<n.
        var index = Array(0..<n)  // [M]
        var clean = x  // [M, C, H, W] the clean points
        // x^(k), the current iterate, and x^(k-1), the previous one: [M, C, H, W].
        var current = randomStart(x, config: config, rng: &rng)
        var previous = current
        // Per example: x_max (best point by the attack's loss) with the gradient there, so a
        // restart from x_max needs no extra backward.
        var bestPoint = current  // [M, C, H, W]
        var step = [Float](repeating: 2 * eps, count: n)  // [M] eta, per example
        var bestLoss = [Float](repeating: 0, count: n)  // [M] f_max
        var lastLoss = [Float](repeating: 0, count: n)  // [M] f(x^(k)), to count successful steps
        var successes = [Int](repeating: 0, count: n)  // [M] steps that raised the loss since the last checkpoint
        var bestLossAtCheck = [Float](repeating: 0, count: n)  // [M] f_max at the last checkpoint
        var reducedAtCheck = [Bool](repeating: false, count: n)  // [M] whether eta was halved at the last checkpoint
        // Per example of the whole batch (indexed by e, not j): the best misclassifying iterate.
        var fooledPoint = Tensor(uninitializedShape: x.shape)  // [N, C, H, W]; row e valid iff fooled[e]
        var fooled = [Bool](repeating: false, count: n)  // [N]
        var fooledLoss = [Float](repeating: 0, count: n)  // [N] the run's loss at fooledPoint
        var stepScratch = [Float](repeating: 0, count: d)  // [D] one example's displacement (L2)
        var evaluation = Evaluation(
            n: n, k: network.config.numClasses, labels: labels, targets: targets, loss: config.loss)

        // x^(0): loss and gradient; it is the first x_max, and may already fool the network.
        var gradient = evaluation.run(network, current, backward: true)!  // [M, C, H, W]
        var bestGradient = gradient  // [M, C, H, W]; row j is the gradient at x_max of example index[j]
        for e in 0..<n {
            bestLoss[e] = evaluation.loss[e]
            lastLoss[e] = evaluation.loss[e]
            bestLossAtCheck[e] = evaluation.loss[e]
        }
        recordFooled(evaluation, current, index, &fooledPoint, &fooled, &fooledLoss, d: d)

        /// Drops the fooled examples from every per-example state (stopWhenFooled only).
        func dropFooled() {
            guard config.stopWhenFooled else { return }
            let keep = index.indices.filter { !fooled[index[$0]] }  // rows j that stay
            guard keep.count < index.count else { return }
            index = keep.map { index[$0] }
            clean = gather(clean, rows: keep, perExample: d)
            current = gather(current, rows: keep, perExample: d)
            previous = gather(previous, rows: keep, perExample: d)
            bestPoint = gather(bestPoint, rows: keep, perExample: d)
            gradient = gather(gradient, rows: keep, perExample: d)
            bestGradient = gather(bestGradient, rows: keep, perExample: d)
            step = keep.map { step[$0] }
            bestLoss = keep.map { bestLoss[$0] }
            lastLoss = keep.map { lastLoss[$0] }
            successes = keep.map { successes[$0] }
            bestLossAtCheck = keep.map { bestLossAtCheck[$0] }
            reducedAtCheck = keep.map { reducedAtCheck[$0] }
            evaluation = evaluation.keeping(rows: keep)
        }
        dropFooled()

        var nextCheck = 0
        var lastCheckpoint = 0
        for iteration in stride(from: 1, through: iterations, by: 1) {
            let m = index.count
            if m == 0 { break }
            // x^(k) from x^(k-1): the first step has no momentum (alpha = 1).
            let alpha: Float = iteration == 1 ? 1 : config.momentum
            // x^(k+1) goes into the buffer of x^(k-1), which is no longer needed: the buffer
            // the network may still hold from the last forward is never written, so no
            // copy-on-write copy of the batch happens per iteration.
            takeStep(
                from: current, into: &previous, x: clean, gradient: gradient, step: step, alpha: alpha,
                norm: config.norm, epsilon: eps, n: m, d: d, scratch: &stepScratch)
            swap(&current, &previous)
            // The last iterate needs only its loss: nothing steps from it.
            let isLast = iteration == iterations
            if let g = evaluation.run(network, current, backward: !isLast) { gradient = g }
            recordFooled(evaluation, current, index, &fooledPoint, &fooled, &fooledLoss, d: d)
            if !isLast { dropFooled() }
            let kept = index.count

            current.withUnsafePointer { cp in
                bestPoint.withUnsafeMutablePointer { bp in
                    gradient.withUnsafePointer { gp in
                        bestGradient.withUnsafeMutablePointer { bgp in
                            for j in 0..<kept {
                                let f = evaluation.loss[j]
                                if f > lastLoss[j] { successes[j] += 1 }
                                lastLoss[j] = f
                                if f > bestLoss[j] {
                                    bestLoss[j] = f
                                    (bp + j * d).update(from: cp + j * d, count: d)
                                    if !isLast { (bgp + j * d).update(from: gp + j * d, count: d) }
                                }
                            }
                        }
                    }
                }
            }

            // After the last iterate a step-size review would change nothing returned.
            guard !isLast, nextCheck < checkpoints.count, checkpoints[nextCheck] == iteration else { continue }
            // Checkpoint w_j: review every example's step size over the steps since w_{j-1}.
            let interval = Float(iteration - lastCheckpoint)
            lastCheckpoint = iteration
            nextCheck += 1
            current.withUnsafeMutablePointer { cp in
                bestPoint.withUnsafePointer { bp in
                    gradient.withUnsafeMutablePointer { gp in
                        bestGradient.withUnsafePointer { bgp in
                            for j in 0..<kept {
                                // Condition 1: too few of the steps since w_{j-1} raised the loss.
                                let oscillating = Float(successes[j]) < config.rho * interval
                                // Condition 2: eta was not changed at w_{j-1} and f_max has not
                                // moved since (f_max only ever grows, so equality is exact). At
                                // w_1 this asks whether f_max rose above f(x^(0)), as the paper
                                // reads; AutoAttack's code skips condition 2 at w_1 instead.
                                let stuck = !reducedAtCheck[j] && bestLoss[j] == bestLossAtCheck[j]
                                let reduce = oscillating || stuck
                                reducedAtCheck[j] = reduce
                                bestLossAtCheck[j] = bestLoss[j]
                                successes[j] = 0
                                if reduce {
                                    // Halve eta and continue from x_max, whose gradient was kept.
                                    // x^(k-1) stays, so the next momentum term is x_max - x^(k-1),
                                    // as Algorithm 1 and AutoAttack have it.
                                    step[j] *= 0.5
                                    (cp + j * d).update(from: bp + j * d, count: d)
                                    (gp + j * d).update(from: bgp + j * d, count: d)
                                    lastLoss[j] = bestLoss[j]
                                }
                            }
                        }
                    }
                }
            }
        }

        // The answer: a misclassifying iterate where there was one, else x_max. An example that
        // left the batch was fooled, so every example is covered.
        var answer = Tensor(uninitializedShape: x.shape)  // [N, C, H, W]
        answer.withUnsafeMutablePointer { ap in
            bestPoint.withUnsafePointer { bp in
                for (j, e) in index.enumerated() where !fooled[e] { (ap + e * d).update(from: bp + j * d, count: d) }
            }
            fooledPoint.withUnsafePointer { fp in
                for e in 0..<n where fooled[e] { (ap + e * d).update(from: fp + e * d, count: d) }
            }
        }
        let e = evaluateAttackLoss(network, answer, labels: labels)
        return AttackResult(adversarial: answer, loss: e.loss, predictions: e.predictions, labels: labels)
    }

    /// x^(0): L-inf uniform in the ball (as PGD); L2 AutoAttack's start, a Gaussian direction
    /// scaled onto the sphere of radius epsilon. Both are clipped to [0, 1], which moves pixels
    /// toward x and so stays inside the ball.
    static func randomStart(_ x: Tensor, config: APGDConfig, rng: inout RNG) -> Tensor {
        let n = x.dim(0)
        let d = x.count / n
        let eps = config.epsilon
        var start = Tensor(uninitializedShape: x.shape)  // [N, C, H, W]
        start.withUnsafeMutablePointer { sp in
            x.withUnsafePointer { xp in
                switch config.norm {
                case .linf:
                    for i in 0..<x.count { sp[i] = min(max(xp[i] + rng.uniform(-eps, eps), 0), 1) }
                case .l2:
                    for e in 0..<n {
                        let s = sp + e * d
                        let xe = xp + e * d
                        for i in 0..<d { s[i] = rng.normal() }
                        let norm = Double(Vector.dot(s, s, d)).squareRoot()
                        // A hair inside the sphere so Float rounding cannot leave the ball.
                        let f: Float = norm > 0 ? Float(Double(eps) / norm * (1 - 1e-6)) : 0
                        for i in 0..<d { s[i] = min(max(xe[i] + f * s[i], 0), 1) }
                    }
                }
            }
        }
        return start
    }

    /// Copies into `fooledPoint` every example misclassified at `current` whose loss (the one the
    /// run ascends) beats the misclassifying point kept so far. Judging by the run's own loss
    /// keeps APGD-T's answer on its target class (a higher cross-entropy point may have crossed
    /// into another class); runs are compared by cross-entropy only when they are merged.
    static func recordFooled(
        _ evaluation: Evaluation, _ current: Tensor, _ index: [Int], _ fooledPoint: inout Tensor,
        _ fooled: inout [Bool], _ fooledLoss: inout [Float], d: Int
    ) {
        fooledPoint.withUnsafeMutablePointer { fp in
            current.withUnsafePointer { cp in
                for (j, e) in index.enumerated() where evaluation.predictions[j] != evaluation.labels[j] {
                    if fooled[e] && evaluation.loss[j] <= fooledLoss[e] { continue }
                    fooled[e] = true
                    fooledLoss[e] = evaluation.loss[j]
                    (fp + e * d).update(from: cp + j * d, count: d)
                }
            }
        }
    }

    /// One step of Algorithm 1 for every example:
    /// z = P(x^(k) + eta * s), x^(k+1) = P(x^(k) + alpha (z - x^(k)) + (1 - alpha)(x^(k) - x^(k-1))),
    /// with s = sign(gradient) (L-inf) or gradient / ||gradient|| (L2), and P the projection onto
    /// the ball followed by clipping to [0, 1] (as `PGD.project`). `current` is x^(k); `previous`
    /// holds x^(k-1) on entry and x^(k+1) on return. x, gradient, current, previous:
    /// [N, C, H, W]; step: [N].
    static func takeStep(
        from current: Tensor, into previous: inout Tensor, x: Tensor, gradient: Tensor, step: [Float],
        alpha: Float, norm: ThreatNorm, epsilon eps: Float, n: Int, d: Int, scratch: inout [Float]
    ) {
        let beta = 1 - alpha
        current.withUnsafePointer { cp in
            previous.withUnsafeMutablePointer { pp in
                x.withUnsafePointer { xp in
                    gradient.withUnsafePointer { gp in
                        switch norm {
                        case .linf:
                            for e in 0..<n {
                                let c = cp + e * d
                                let p = pp + e * d
                                let x0 = xp + e * d
                                let g = gp + e * d
                                let eta = step[e]
                                // Element-wise: the L-inf projection acts on each pixel alone.
                                for i in 0..<d {
                                    let s: Float = g[i] > 0 ? 1 : (g[i] < 0 ? -1 : 0)
                                    let xi = c[i]
                                    let oi = x0[i]
                                    let z = min(max(oi + min(max(xi + eta * s - oi, -eps), eps), 0), 1)
                                    let u = xi + alpha * (z - xi) + beta * (xi - p[i])
                                    p[i] = min(max(oi + min(max(u - oi, -eps), eps), 0), 1)
                                }
                            }
                        case .l2:
                            scratch.withUnsafeMutableBufferPointer { sb in
                                let delta = sb.baseAddress!  // [D]
                                for e in 0..<n {
                                    let c = cp + e * d
                                    let p = pp + e * d
                                    let x0 = xp + e * d
                                    let g = gp + e * d
                                    let gNorm = Double(Vector.dot(g, g, d)).squareRoot()
                                    let scale = gNorm > 0 ? Float(Double(step[e]) / gNorm) : 0
                                    // z - x0 before projection, then the factor that projects it.
                                    var sq = 0.0
                                    for i in 0..<d {
                                        let v = c[i] + scale * g[i] - x0[i]
                                        delta[i] = v
                                        sq += Double(v) * Double(v)
                                    }
                                    let fz = shrink(sq, eps)
                                    // The momentum point u - x0, then its projection factor.
                                    sq = 0
                                    for i in 0..<d {
                                        let xi = c[i]
                                        let oi = x0[i]
                                        let z = min(max(oi + delta[i] * fz, 0), 1)
                                        let v = xi + alpha * (z - xi) + beta * (xi - p[i]) - oi
                                        delta[i] = v
                                        sq += Double(v) * Double(v)
                                    }
                                    let fu = shrink(sq, eps)
                                    for i in 0..<d { p[i] = min(max(x0[i] + delta[i] * fu, 0), 1) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The factor that maps a displacement with squared norm `sq` into the L2 ball of radius eps:
    /// 1 inside, else eps / norm shrunk by a hair so Float rounding cannot leave it outside.
    @inline(__always) static func shrink(_ sq: Double, _ eps: Float) -> Float {
        let norm = sq.squareRoot()
        return norm > Double(eps) ? Float(Double(eps) / norm * (1 - 1e-6)) : 1
    }

    /// The per-iteration loss evaluation with its buffers, reused across iterations: the attack's
    /// loss and prediction per example, and dLoss/dlogits `[N, K]`.
    struct Evaluation {
        let labels: [Int32]  // [N]
        let targets: [Int32]?  // [N], for the targeted loss
        let kind: APGDConfig.Loss
        let k: Int
        var loss: [Float]  // [N] the loss APGD ascends
        var predictions: [Int32]  // [N]
        var logitsGradient: Tensor  // [N, K]

        init(n: Int, k: Int, labels: [Int32], targets: [Int32]?, loss kind: APGDConfig.Loss) {
            self.labels = labels
            self.targets = targets
            self.kind = kind
            self.k = k
            loss = [Float](repeating: 0, count: n)
            predictions = [Int32](repeating: 0, count: n)
            logitsGradient = Tensor(shape: [n, k])
        }

        /// The evaluation of the examples at `rows` only, with their last losses and predictions.
        func keeping(rows: [Int]) -> Evaluation {
            var out = Evaluation(
                n: rows.count, k: k, labels: rows.map { labels[$0] }, targets: targets.map { t in rows.map { t[$0] } },
                loss: kind)
            out.loss = rows.map { loss[$0] }
            out.predictions = rows.map { predictions[$0] }
            return out
        }

        /// One inference forward at `x` `[N, C, H, W]`, the losses, and, when `backward`, the
        /// input-only backward giving dLoss/dx `[N, C, H, W]` for the whole batch.
        mutating func run(_ network: Network, _ x: Tensor, backward: Bool) -> Tensor? {
            let logits = network.forward(x, mode: .inference)  // [N, K]
            let n = labels.count
            precondition(logits.shape == [n, k], "APGD: expected logits [\(n), \(k)], got \(logits.shape)")
            logitsGradient.withUnsafeMutablePointer { gp in
                logits.withUnsafePointer { lp in
                    for e in 0..<n {
                        let row = lp + e * k
                        let g = gp + e * k
                        let y = Int(labels[e])
                        let r: (loss: Float, prediction: Int32)
                        switch kind {
                        case .crossEntropy: r = DLRKernel.crossEntropy(row, k, y, g)
                        case .dlr: r = DLRKernel.untargeted(row, k, y, g)
                        case .targetedDLR: r = DLRKernel.targeted(row, k, y, Int(targets![e]), g)
                        }
                        loss[e] = r.loss
                        predictions[e] = r.prediction
                    }
                }
            }
            guard backward else { return nil }
            return network.backward(
                logitsGradient: logitsGradient, representationGradient: nil, parameterGradients: false)
        }
    }
}
