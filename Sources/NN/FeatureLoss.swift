import Foundation
import TensorCore

/// A feature-matching loss between student and teacher representations `[N, D]` with
/// gradients for both sides (the teacher's is used only by tests and analysis).
public struct FeatureLossResult {
    /// Mean loss over the batch.
    public var value: Float
    /// dLoss/dStudent.
    public var studentGradient: Tensor
    /// dLoss/dTeacher.
    public var teacherGradient: Tensor
}

/// The feature losses of Robust Representation Matching.
public enum FeatureLoss: String, CaseIterable, Sendable {
    /// `mean_i (1 - cos(s_i, t_i))`, the paper's CIFAR-10 choice.
    case cosine
    /// `mean_i ||s_i - t_i|| / ||t_i||`, the paper's choice for ImageNet-scale data.
    case relativeL2 = "l2"

    /// Norms below this are clamped, as PyTorch's `cosine_similarity` does with `eps = 1e-8`.
    static let epsilon = 1e-8

    /// The loss and its gradients for student `s` and teacher `t`, both `[N, D]`.
    public func evaluate(student s: Tensor, teacher t: Tensor) -> FeatureLossResult {
        expectRank(s, 2, "FeatureLoss")
        precondition(s.shape == t.shape, "FeatureLoss: student \(s.shape) and teacher \(t.shape) differ")
        let n = s.dim(0)
        let d = s.dim(1)
        var gs = Tensor(uninitializedShape: s.shape)
        var gt = Tensor(uninitializedShape: t.shape)
        var total = 0.0
        gs.withUnsafeMutablePointer { gsp in
            gt.withUnsafeMutablePointer { gtp in
                s.withUnsafePointer { sp in
                    t.withUnsafePointer { tp in
                        for i in 0..<n {
                            total += row(sp + i * d, tp + i * d, gsp + i * d, gtp + i * d, d, batch: n)
                        }
                    }
                }
            }
        }
        return FeatureLossResult(value: Float(total / Double(n)), studentGradient: gs, teacherGradient: gt)
    }

    /// One row's loss; writes its gradients already divided by the batch size.
    private func row(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ ga: UnsafeMutablePointer<Float>,
        _ gb: UnsafeMutablePointer<Float>, _ d: Int, batch: Int
    ) -> Double {
        var aa = 0.0
        var bb = 0.0
        var ab = 0.0
        for j in 0..<d {
            let x = Double(a[j])
            let y = Double(b[j])
            aa += x * x
            bb += y * y
            ab += x * y
        }
        let inv = 1 / Double(batch)
        switch self {
        case .cosine:
            let na = max(aa.squareRoot(), Self.epsilon)
            let nb = max(bb.squareRoot(), Self.epsilon)
            let cos = ab / (na * nb)
            // d(1 - cos)/da = -(b / (|a||b|) - cos * a / |a|^2), with clamped norms held constant.
            let aClamped = aa.squareRoot() < Self.epsilon
            let bClamped = bb.squareRoot() < Self.epsilon
            for j in 0..<d {
                let x = Double(a[j])
                let y = Double(b[j])
                ga[j] = Float(-(y / (na * nb) - (aClamped ? 0 : cos * x / (na * na))) * inv)
                gb[j] = Float(-(x / (na * nb) - (bClamped ? 0 : cos * y / (nb * nb))) * inv)
            }
            return 1 - cos
        case .relativeL2:
            var dd = 0.0
            for j in 0..<d {
                let e = Double(a[j]) - Double(b[j])
                dd += e * e
            }
            let nd = dd.squareRoot()
            let nb = max(bb.squareRoot(), Self.epsilon)
            let r = nd / nb
            for j in 0..<d {
                let e = Double(a[j]) - Double(b[j])
                let de = nd > 0 ? e / (nd * nb) : 0
                ga[j] = Float(de * inv)
                gb[j] = Float((-de - r * Double(b[j]) / (nb * nb)) * inv)
            }
            return r
        }
    }
}
