import Foundation

/// A learning-rate schedule evaluated per iteration (step), as PyTorch's schedulers are when
/// stepped once per batch.
public enum LRSchedule: Equatable, Sendable {
    /// The same rate throughout.
    case constant(Float)
    /// `lr * gamma^k` after the k-th milestone iteration (`MultiStepLR`).
    case multiStep(lr: Float, milestones: [Int], gamma: Float)
    /// Cosine annealing from `lr` to `minLR` over `total` iterations (`CosineAnnealingLR`).
    case cosine(lr: Float, total: Int, minLR: Float)
    /// PyTorch's `OneCycleLR` (cosine, two phases): from `maxLR/divFactor` up to `maxLR` over
    /// `pctStart` of the run, then down to `maxLR/divFactor/finalDivFactor`.
    case oneCycle(maxLR: Float, total: Int, pctStart: Float, divFactor: Float, finalDivFactor: Float)
    /// Cyclic triangle (Wong et al.'s Fast-AT): linear from 0 up to `maxLR` at `peak` of the
    /// run, then linear down to 0 at `total`.
    case triangular(maxLR: Float, total: Int, peak: Float)

    /// `OneCycleLR` with PyTorch's default shape (pct_start 0.3, div 25, final div 1e4).
    public static func oneCycle(maxLR: Float, total: Int) -> LRSchedule {
        .oneCycle(maxLR: maxLR, total: total, pctStart: 0.3, divFactor: 25, finalDivFactor: 1e4)
    }

    /// The learning rate for iteration `t` (0-based).
    public func rate(at t: Int) -> Float {
        switch self {
        case .constant(let lr):
            return lr
        case .multiStep(let lr, let milestones, let gamma):
            let passed = milestones.filter { t >= $0 }.count
            return lr * pow(gamma, Float(passed))
        case .cosine(let lr, let total, let minLR):
            let progress = Double(min(t, total)) / Double(max(total, 1))
            return Float(Double(minLR) + Double(lr - minLR) * (1 + cos(Double.pi * progress)) / 2)
        case .oneCycle(let maxLR, let total, let pctStart, let div, let finalDiv):
            let initial = Double(maxLR / div)
            let minLR = initial / Double(finalDiv)
            let (phase, pct) = oneCyclePhase(t, total: total, pctStart: pctStart)
            return phase == 0
                ? Float(cosineBetween(initial, Double(maxLR), pct))
                : Float(cosineBetween(Double(maxLR), minLR, pct))
        case .triangular(let maxLR, let total, let peak):
            let x = Double(t)
            let top = Double(peak) * Double(total)
            if x <= top { return Float(Double(maxLR) * x / max(top, 1e-12)) }
            return Float(Double(maxLR) * max(0, (Double(total) - x) / max(Double(total) - top, 1e-12)))
        }
    }

    /// The momentum `OneCycleLR` cycles against the rate (0.95 down to 0.85 and back, PyTorch's
    /// defaults); nil for schedules that leave momentum alone.
    public func momentum(at t: Int) -> Float? {
        guard case .oneCycle(_, let total, let pctStart, _, _) = self else { return nil }
        let (phase, pct) = oneCyclePhase(t, total: total, pctStart: pctStart)
        return Float(phase == 0 ? cosineBetween(0.95, 0.85, pct) : cosineBetween(0.85, 0.95, pct))
    }

    /// Which `OneCycleLR` phase iteration `t` is in and how far through it, as PyTorch
    /// computes it (phase ends at `pctStart * total - 1` and `total - 1`).
    private func oneCyclePhase(_ t: Int, total: Int, pctStart: Float) -> (Int, Double) {
        let end1 = Double(pctStart) * Double(total) - 1
        let end2 = Double(total) - 1
        let x = Double(t)
        if x <= end1 { return (0, end1 > 0 ? x / end1 : 1) }
        return (1, end2 > end1 ? (x - end1) / (end2 - end1) : 1)
    }

    private func cosineBetween(_ start: Double, _ end: Double, _ pct: Double) -> Double {
        end + (start - end) / 2 * (cos(Double.pi * pct) + 1)
    }
}
