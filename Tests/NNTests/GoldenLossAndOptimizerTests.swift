import Checkpoint
import Foundation
import NN
import TensorCore
import TestSupport
import XCTest

/// Losses, SGD variants and learning-rate schedules against PyTorch's values.
final class GoldenLossAndOptimizerTests: XCTestCase {
    func testLosses() throws {
        let f = try goldenFixture("losses.safetensors")
        let a = try f.float32("a")
        let b = try f.float32("b")
        let logits = try f.float32("logits")
        let labels = try f.int64("labels").values.map { Int32($0) }
        let ce = softmaxCrossEntropy(logits: logits, labels: labels)
        assertClose(scalar(ce.value), try f.float32("ce.loss").reshaped([1]), 1e-5, "ce.loss")
        assertClose(ce.gradient, try f.float32("ce.grad"), 1e-5, "ce.grad")
        for (loss, key) in [(FeatureLoss.cosine, "cos"), (.relativeL2, "rel_l2")] {
            let r = loss.evaluate(student: a, teacher: b)
            assertClose(scalar(r.value), try f.float32("\(key).loss").reshaped([1]), 1e-5, "\(key).loss")
            assertClose(r.studentGradient, try f.float32("\(key).grad_a"), 1e-5, "\(key).grad_a")
            assertClose(r.teacherGradient, try f.float32("\(key).grad_b"), 1e-5, "\(key).grad_b")
        }
        // RRM: 0.005 * CE + cosine loss; gradients flow to the logits and the student features.
        let cos = FeatureLoss.cosine.evaluate(student: a, teacher: b)
        assertClose(scalar(0.005 * ce.value + cos.value), try f.float32("rrm.loss").reshaped([1]), 1e-5, "rrm.loss")
        var gl = ce.gradient
        let n = gl.count
        gl.withUnsafeMutablePointer { p in for i in 0..<n { p[i] *= 0.005 } }
        assertClose(gl, try f.float32("rrm.grad_logits"), 1e-5, "rrm.grad_logits")
        assertClose(cos.studentGradient, try f.float32("rrm.grad_a"), 1e-5, "rrm.grad_a")
    }

    func testSGDVariants() throws {
        let f = try goldenFixture("optim.safetensors")
        let variants: [(String, SGD.Settings)] = [
            ("sgd_wd", .init(momentum: 0.9, weightDecay: 5e-4)),
            ("nesterov", .init(momentum: 0.9, nesterov: true)),
            ("nesterov_wd", .init(momentum: 0.9, weightDecay: 5e-4, nesterov: true)),
        ]
        for (name, settings) in variants {
            let w = Parameter(try f.float32("init.w"))
            let b = Parameter(try f.float32("init.b"))
            let sgd = SGD(parameters: [("w", w), ("b", b)], settings: settings)
            let lr = Float(f.metadata["\(name).lr"] ?? f.metadata["lr"] ?? "0.1") ?? 0.1
            for step in 1...3 {
                w.grad = try f.float32("grad\(step).w")
                b.grad = try f.float32("grad\(step).b")
                sgd.step(lr: lr)
                assertClose(w.value, try f.float32("\(name).step\(step).w"), 1e-6, "\(name) step \(step) w")
                assertClose(b.value, try f.float32("\(name).step\(step).b"), 1e-6, "\(name) step \(step) b")
            }
        }
    }

    func testSchedules() throws {
        let data = try Data(
            contentsOf: URL(fileURLWithPath: TestFixtures.goldenDirectory).appendingPathComponent("schedules.json"))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        func series(_ name: String, _ key: String) throws -> [Double] {
            let entry = try XCTUnwrap(json[name] as? [String: Any], name)
            return try XCTUnwrap(entry[key] as? [Double], "\(name).\(key)")
        }
        let cosine = try series("cosine", "lr")
        for (t, v) in cosine.enumerated() {
            XCTAssertEqual(
                Double(LRSchedule.cosine(lr: 0.1, total: 50, minLR: 1e-6).rate(at: t)), v, accuracy: 1e-7, "cosine \(t)"
            )
        }
        for (t, v) in try series("multistep", "lr").enumerated() {
            XCTAssertEqual(
                Double(LRSchedule.multiStep(lr: 0.1, milestones: [10, 30], gamma: 0.1).rate(at: t)), v, accuracy: 1e-8,
                "multistep \(t)")
        }
        let one = LRSchedule.oneCycle(maxLR: 0.2, total: 40)
        for (t, v) in try series("onecycle", "lr").enumerated() {
            XCTAssertEqual(Double(one.rate(at: t)), v, accuracy: 1e-7, "onecycle lr \(t)")
        }
        for (t, v) in try series("onecycle", "momentum").enumerated() {
            XCTAssertEqual(Double(one.momentum(at: t) ?? 0), v, accuracy: 1e-6, "onecycle momentum \(t)")
        }
    }
}
