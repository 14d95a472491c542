import Checkpoint
import Models
import NN
import TensorCore
import TestSupport
import Training
import XCTest

/// One Robust Representation Matching step against PyTorch (`rrm-step.safetensors` from
/// `Tools/pytorch/make_golden.py`, float64): a frozen teacher in inference mode, a student of
/// another architecture with a projection to the teacher's width in training mode, both feature
/// losses; plus finite-difference checks of `RRMLoss` itself.
final class GoldenRRMTests: XCTestCase {
    func testCosineStepMatchesPyTorch() throws { try checkStep("cos", .cosine) }
    func testRelativeL2StepMatchesPyTorch() throws { try checkStep("l2", .relativeL2) }

    /// Loads teacher and student, runs the step as the trainer does, and compares the loss, its
    /// parts, the gradients at logits and representation, and every student parameter gradient
    /// (max |Δ| / max |golden| ≤ 1e-4 per tensor, as `GoldenModelTests`).
    func checkStep(_ tag: String, _ featureLoss: FeatureLoss) throws {
        let f = try goldenFixture("rrm-step.safetensors")
        let m = f.metadata
        func int(_ k: String) throws -> Int { try XCTUnwrap(Int(m[k] ?? ""), "metadata \(k)") }
        func double(_ k: String) throws -> Double { try XCTUnwrap(Double(m[k] ?? ""), "metadata \(k)") }
        func floats(_ k: String) -> [Float] { (m[k] ?? "").split(separator: ",").compactMap { Float($0) } }
        func config(_ width: Double, projection: Int? = nil) throws -> ModelConfig {
            ModelConfig(
                channels: try int("in_channels"), height: try int("height"), width: try int("width"),
                numClasses: try int("num_classes"), widthMultiplier: width, mean: floats("mean"), std: floats("std"),
                projection: projection)
        }
        let teacherArch = try XCTUnwrap(m["teacher_arch"])
        let studentArch = try XCTUnwrap(m["student_arch"])
        let teacherConfig = try config(try double("teacher_width_mult"))
        var studentConfig = try config(try double("student_width_mult"))
        // The distiller's decision: the student's natural width differs from the teacher's, so
        // it gets a projection to the teacher's width, which is what the fixture's student has.
        let teacherWidth = try ModelRegistry.representationWidth(teacherArch, config: teacherConfig)
        XCTAssertNotEqual(try ModelRegistry.bodyWidth(studentArch, config: studentConfig), teacherWidth)
        XCTAssertEqual(try int("projection"), teacherWidth)
        studentConfig.projection = teacherWidth

        let teacher = try ModelRegistry.make(teacherArch, config: teacherConfig, seed: 0)
        try teacher.loadState(from: f, prefix: "teacher.")
        let student = try ModelRegistry.make(studentArch, config: studentConfig, seed: 0)
        try student.loadState(from: f, prefix: "student.")
        let x = try f.float32("input")  // [N, C, H, W]
        let labels = try f.int64("labels").values.map { Int32($0) }
        let tol: Float = 1e-4
        var worst = MaxAbsDiff()
        func check(_ actual: Tensor, _ key: String) throws {
            let expected = try f.float32(key)
            assertClose(actual, expected.count == 1 ? expected.reshaped(actual.shape) : expected, tol, key)
            worst.add(actual, expected, key)
        }

        let target = teacher.forwardWithRepresentation(x, mode: .inference).representation  // [N, D_t]
        try check(target, "outputs.teacher_representation")
        let (logits, z) = student.forwardWithRepresentation(x, mode: .training)  // [N, K], [N, D_t]
        try check(logits, "outputs.student_logits")
        try check(z, "outputs.student_representation")

        let objective = RRMLoss(xentWeight: Float(try double("\(tag).xent_weight")), featureLoss: featureLoss)
        let r = objective.evaluate(logits: logits, labels: labels, student: z, teacher: target)
        try check(scalar(r.value), "\(tag).loss")
        try check(scalar(r.crossEntropy), "\(tag).cross_entropy")
        try check(scalar(r.feature), "\(tag).feature")
        try check(r.logitsGradient, "\(tag).logits_grad")
        try check(r.representationGradient, "\(tag).representation_grad")

        student.zeroGradients()
        _ = student.backward(
            logitsGradient: r.logitsGradient, representationGradient: r.representationGradient,
            parameterGradients: true)
        // The teacher is a constant: no gradient reached it and inference left its statistics alone.
        XCTAssertTrue(teacher.namedParameters().allSatisfy { $0.1.grad.array.allSatisfy { $0 == 0 } })
        for (key, stored) in teacher.stateTensors() {
            if case .float32(let t) = stored {
                XCTAssertEqual(t.array, try f.float32("teacher." + key).array, "teacher \(key)")
            }
        }
        let parameters = student.namedParameters()
        XCTAssertTrue(parameters.contains { $0.0 == "projection.weight" })
        // Every parameter the fixture has a gradient for, and no other.
        let stored = Set(
            f.names.filter { $0.hasPrefix("\(tag).grad.") }.map { String($0.dropFirst("\(tag).grad.".count)) })
        XCTAssertEqual(Set(parameters.map(\.0)), stored)
        for (name, p) in parameters { try check(p.grad, "\(tag).grad.\(name)") }
        worst.report("rrm-step \(tag)")
    }

    /// dLoss/dLogits and dLoss/dRepresentation of `RRMLoss` against central differences of its
    /// value, for both feature losses, the paper's and a unit cross-entropy weight. At weight 1
    /// the whole value is differenced; at 0.005 the two parts are differenced separately and
    /// combined in Double, because the weighted cross-entropy's change would drown in the float32
    /// rounding of the whole value.
    func testRRMLossGradientsMatchFiniteDifferences() {
        var rng = RNG(seed: 77)
        let n = 3
        let k = 4
        let d = 5
        let logits = Tensor.normal(shape: [n, k], std: 1, rng: &rng)  // [N, K]
        let student = Tensor.normal(shape: [n, d], std: 1, rng: &rng)  // [N, D]
        let teacher = Tensor.normal(shape: [n, d], std: 1, rng: &rng)  // [N, D]
        let labels: [Int32] = [2, 0, 3]
        let h: Float = 1e-2  // smooth functions of O(1) inputs: truncation ~h², rounding ~1e-7/h
        for featureLoss in FeatureLoss.allCases {
            for weight: Float in [0.005, 1] {
                let loss = RRMLoss(xentWeight: weight, featureLoss: featureLoss)
                let r = loss.evaluate(logits: logits, labels: labels, student: student, teacher: teacher)
                let what = "\(featureLoss) weight \(weight)"
                XCTAssertEqual(
                    Double(r.value), Double(weight) * Double(r.crossEntropy) + Double(r.feature),
                    accuracy: 1e-6, what)

                func numeric(
                    _ t: Tensor, _ i: Int, _ part: (RRMLoss.Result) -> Float,
                    _ eval: (Tensor) -> RRMLoss.Result
                ) -> Double {
                    var plus = t
                    var minus = t
                    plus[flat: i] += h
                    minus[flat: i] -= h
                    return (Double(part(eval(plus))) - Double(part(eval(minus)))) / (2 * Double(h))
                }
                let whole = weight == 1
                var logitScale = 0.0
                var logitError = 0.0
                for i in 0..<logits.count {
                    let fd =
                        (whole ? 1 : Double(weight))
                        * numeric(logits, i, whole ? \.value : \.crossEntropy) {
                            loss.evaluate(logits: $0, labels: labels, student: student, teacher: teacher)
                        }
                    logitScale = max(logitScale, abs(Double(r.logitsGradient[flat: i])))
                    logitError = max(logitError, abs(fd - Double(r.logitsGradient[flat: i])))
                }
                XCTAssertLessThanOrEqual(logitError, 1e-3 * logitScale, "\(what): dLoss/dLogits")
                var repScale = 0.0
                var repError = 0.0
                for i in 0..<student.count {
                    let fd = numeric(student, i, whole ? \.value : \.feature) {
                        loss.evaluate(logits: logits, labels: labels, student: $0, teacher: teacher)
                    }
                    repScale = max(repScale, abs(Double(r.representationGradient[flat: i])))
                    repError = max(repError, abs(fd - Double(r.representationGradient[flat: i])))
                }
                XCTAssertLessThanOrEqual(repError, 1e-3 * repScale, "\(what): dLoss/dRepresentation")
                XCTAssertGreaterThan(repScale, 0, what)
            }
        }
    }
}
