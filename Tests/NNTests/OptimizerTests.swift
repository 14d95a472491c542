import NN
import TensorCore
import XCTest

/// SGD and learning-rate schedules on hand-computed values (the PyTorch golden values are
/// checked in ModelsTests).
final class OptimizerTests: XCTestCase {
    func testSGDMomentumAndWeightDecayFollowPyTorch() {
        let p = Parameter(Tensor(shape: [1], data: [1]))
        let sgd = SGD(parameters: [("w", p)], settings: .init(momentum: 0.9, weightDecay: 0.1))
        p.grad = Tensor(shape: [1], data: [0.5])
        sgd.step(lr: 0.1)
        // g = 0.5 + 0.1*1 = 0.6; buf = 0.6; w = 1 - 0.06
        XCTAssertEqual(p.value[flat: 0], 0.94, accuracy: 1e-6)
        sgd.step(lr: 0.1)
        // g = 0.5 + 0.094 = 0.594; buf = 0.9*0.6 + 0.594 = 1.134; w = 0.94 - 0.1134
        XCTAssertEqual(p.value[flat: 0], 0.8266, accuracy: 1e-6)
        let q = Parameter(Tensor(shape: [1], data: [1]))
        let nesterov = SGD(parameters: [("w", q)], settings: .init(momentum: 0.9, nesterov: true))
        q.grad = Tensor(shape: [1], data: [1])
        nesterov.step(lr: 0.1)
        // buf = 1; step = 1 + 0.9 = 1.9
        XCTAssertEqual(q.value[flat: 0], 0.81, accuracy: 1e-6)
    }

    func testSchedules() {
        XCTAssertEqual(LRSchedule.constant(0.3).rate(at: 99), 0.3)
        let ms = LRSchedule.multiStep(lr: 1, milestones: [2, 4], gamma: 0.1)
        for (t, expected) in zip(0..., [1, 1, 0.1, 0.1, 0.01, 0.01] as [Float]) {
            XCTAssertEqual(ms.rate(at: t), expected, accuracy: 1e-7)
        }
        let cos = LRSchedule.cosine(lr: 0.1, total: 10, minLR: 0)
        XCTAssertEqual(cos.rate(at: 0), 0.1, accuracy: 1e-7)
        XCTAssertEqual(cos.rate(at: 5), 0.05, accuracy: 1e-7)
        XCTAssertEqual(cos.rate(at: 10), 0, accuracy: 1e-7)
        let tri = LRSchedule.triangular(maxLR: 0.2, total: 10, peak: 0.5)
        XCTAssertEqual(tri.rate(at: 0), 0, accuracy: 1e-7)
        XCTAssertEqual(tri.rate(at: 5), 0.2, accuracy: 1e-7)
        XCTAssertEqual(tri.rate(at: 10), 0, accuracy: 1e-7)
        let one = LRSchedule.oneCycle(maxLR: 0.2, total: 40)
        XCTAssertEqual(one.rate(at: 0), 0.2 / 25, accuracy: 1e-7)
        XCTAssertEqual(one.rate(at: 11), 0.2, accuracy: 1e-6)
        XCTAssertEqual(one.rate(at: 39), 0.2 / 25 / 1e4, accuracy: 1e-9)
        XCTAssertEqual(one.momentum(at: 0) ?? 0, 0.95, accuracy: 1e-6)
    }
}
