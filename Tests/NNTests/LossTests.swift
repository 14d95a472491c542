import NN
import TensorCore
import XCTest

/// Losses: values on hand-computed cases, stability on huge logits, and gradients against
/// finite differences.
final class LossTests: XCTestCase {
    func testCrossEntropyValueAndStability() {
        let logits = Tensor(shape: [2, 3], data: [1, 2, 3, 1000, 0, -1000])
        let r = softmaxCrossEntropy(logits: logits, labels: [2, 0])
        let expected = (log(exp(1.0) + exp(2.0) + exp(3.0)) - 3) / 2
        XCTAssertEqual(Double(r.value), expected, accuracy: 1e-6)
        XCTAssertTrue(r.gradient.array.allSatisfy { $0.isFinite })
        XCTAssertEqual(argmaxRows(logits), [2, 0])
    }

    func testCrossEntropyGradient() {
        var rng = RNG(seed: 3)
        let logits = Tensor.normal(shape: [4, 5], std: 2, rng: &rng)
        let labels: [Int32] = [0, 4, 2, 2]
        let g = softmaxCrossEntropy(logits: logits, labels: labels).gradient
        let h: Float = 1e-2
        for i in 0..<logits.count {
            var p = logits
            var m = logits
            p[flat: i] += h
            m[flat: i] -= h
            let fd =
                (softmaxCrossEntropy(logits: p, labels: labels).value
                    - softmaxCrossEntropy(logits: m, labels: labels).value) / (2 * h)
            XCTAssertEqual(fd, g[flat: i], accuracy: 1e-3)
        }
    }

    func testFeatureLossesGradients() {
        var rng = RNG(seed: 4)
        let s = Tensor.normal(shape: [3, 6], std: 1, rng: &rng)
        let t = Tensor.normal(shape: [3, 6], std: 1, rng: &rng)
        for loss in FeatureLoss.allCases {
            let r = loss.evaluate(student: s, teacher: t)
            let h: Float = 1e-2
            for i in 0..<s.count {
                var p = s
                var m = s
                p[flat: i] += h
                m[flat: i] -= h
                let fd =
                    (loss.evaluate(student: p, teacher: t).value - loss.evaluate(student: m, teacher: t).value)
                    / (2 * h)
                XCTAssertEqual(fd, r.studentGradient[flat: i], accuracy: 2e-3, "\(loss) d/ds[\(i)]")
                var tp = t
                var tm = t
                tp[flat: i] += h
                tm[flat: i] -= h
                let fdt =
                    (loss.evaluate(student: s, teacher: tp).value - loss.evaluate(student: s, teacher: tm).value)
                    / (2 * h)
                XCTAssertEqual(fdt, r.teacherGradient[flat: i], accuracy: 2e-3, "\(loss) d/dt[\(i)]")
            }
        }
        // Identical directions: cosine loss 0; identical vectors: relative L2 0.
        XCTAssertEqual(FeatureLoss.cosine.evaluate(student: s, teacher: s).value, 0, accuracy: 1e-6)
        XCTAssertEqual(FeatureLoss.relativeL2.evaluate(student: s, teacher: s).value, 0, accuracy: 1e-6)
    }
}
