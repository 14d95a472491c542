import Attacks
import Data
import Foundation
import Models
import NN
import TensorCore
import XCTest

final class AttacksTests: XCTestCase {
    let linfEps: Float = 0.1, l2Eps: Float = 1.0

    /// Clean loss and accuracy of the trained model on the test batch.
    private func clean() -> (loss: Double, accuracy: Double) {
        let (net, test) = Fixture.model
        let e = evaluateAttackLoss(net, test.images, labels: test.labels)
        let acc = Double(zip(e.predictions, test.labels).filter { $0 == $1 }.count) / Double(test.count)
        return (e.loss.reduce(0.0) { $0 + Double($1) } / Double(test.count), acc)
    }

    /// The per-example loss agrees with NN's mean cross-entropy, and its gradient is N times the mean's.
    func testPerExampleCrossEntropyMatchesMean() {
        var rng = RNG(seed: 1)
        let logits = Tensor(shape: [5, 4], data: (0..<20).map { _ in rng.normal() * 3 })
        let labels: [Int32] = [0, 3, 1, 2, 3]
        let mine = perExampleCrossEntropy(logits: logits, labels: labels)
        let ref = softmaxCrossEntropy(logits: logits, labels: labels)
        XCTAssertEqual(mine.loss.reduce(0, +) / 5, ref.value, accuracy: 1e-5)
        for (a, b) in zip(mine.gradient.array, ref.gradient.array) { XCTAssertEqual(a, 5 * b, accuracy: 1e-5) }
        XCTAssertEqual(mine.predictions, argmaxRows(logits))
    }

    /// FGSM and PGD (both norms) stay in the ball and in [0, 1], raise the loss and lower the
    /// accuracy, and PGD is at least as strong as FGSM at the same epsilon.
    func testAttacksStayInBallAndHurtTheModel() {
        let (net, test) = Fixture.model
        let x = test.images
        let y = test.labels
        let c = clean()
        XCTAssertGreaterThan(c.accuracy, 0.85, "the fixture model should have learnt digits")

        let fgsm = FGSM.attack(net, x: x, labels: y, epsilon: linfEps)
        var rng = RNG(seed: 11)
        let pgd = PGD.attack(
            net, x: x, labels: y, config: .standard(norm: .linf, epsilon: linfEps, iterations: 10), rng: &rng)
        let pgd2 = PGD.attack(
            net, x: x, labels: y, config: .standard(norm: .l2, epsilon: l2Eps, iterations: 10), rng: &rng)

        for (name, r) in [("FGSM", fgsm), ("PGD-linf", pgd)] {
            let dist = distances(r.adversarial, x)
            XCTAssertLessThanOrEqual(dist.linf, Double(linfEps) + 1e-6, name)
            XCTAssertTrue(dist.inBox, name)
        }
        let dist2 = distances(pgd2.adversarial, x)
        XCTAssertLessThanOrEqual(dist2.l2.max()!, Double(l2Eps) + 1e-5)
        XCTAssertTrue(dist2.inBox)
        XCTAssertGreaterThan(dist2.l2.max()!, Double(l2Eps) * 0.99, "some L2 perturbation should reach the sphere")

        print(
            String(
                format:
                    "digits cnn-small: clean acc %.3f loss %.3f | FGSM(%.2f) acc %.3f loss %.3f | PGD-linf-10 acc "
                        + "%.3f loss %.3f | PGD-l2-10(%.1f) acc %.3f loss %.3f",
                c.accuracy, c.loss, linfEps, fgsm.accuracy, fgsm.meanLoss, pgd.accuracy, pgd.meanLoss, l2Eps,
                pgd2.accuracy, pgd2.meanLoss))
        for (name, r) in [("FGSM", fgsm), ("PGD-linf", pgd), ("PGD-l2", pgd2)] {
            XCTAssertGreaterThan(r.meanLoss, c.loss + 0.5, name)
            XCTAssertLessThan(r.accuracy, c.accuracy - 0.2, name)
        }
        XCTAssertLessThanOrEqual(pgd.accuracy, fgsm.accuracy)
        XCTAssertGreaterThanOrEqual(pgd.meanLoss, fgsm.meanLoss)
    }

    /// Same seed, same bits; another seed gives another random start.
    func testDeterminism() {
        let (net, test) = Fixture.model
        let x = test.slice(0..<64)
        for norm in ThreatNorm.allCases {
            let config = PGDConfig.standard(
                norm: norm, epsilon: norm == .linf ? linfEps : l2Eps, iterations: 3, restarts: 2)
            var a = RNG(seed: 5)
            var b = RNG(seed: 5)
            var c = RNG(seed: 6)
            let ra = PGD.attack(net, x: x.images, labels: x.labels, config: config, rng: &a)
            let rb = PGD.attack(net, x: x.images, labels: x.labels, config: config, rng: &b)
            let rc = PGD.attack(net, x: x.images, labels: x.labels, config: config, rng: &c)
            XCTAssertEqual(ra.adversarial.array, rb.adversarial.array, "\(norm)")
            XCTAssertEqual(ra.loss, rb.loss, "\(norm)")
            XCTAssertNotEqual(ra.adversarial.array, rc.adversarial.array, "\(norm)")
        }
    }

    /// With restarts an example is never worse off than in the first run alone: still fooled if it
    /// was, and otherwise at least the same loss.
    func testRestartsNeverWeaken() {
        let (net, test) = Fixture.model
        let x = test.images
        let y = test.labels
        for norm in ThreatNorm.allCases {
            let eps: Float = norm == .linf ? 0.05 : 0.5
            var a = RNG(seed: 21)
            var b = RNG(seed: 21)
            let one = PGD.attack(
                net, x: x, labels: y, config: .standard(norm: norm, epsilon: eps, iterations: 3, restarts: 1), rng: &a)
            let three = PGD.attack(
                net, x: x, labels: y, config: .standard(norm: norm, epsilon: eps, iterations: 3, restarts: 3), rng: &b)
            for i in 0..<y.count {
                if one.success[i] {
                    XCTAssertTrue(three.success[i], "\(norm) example \(i)")
                } else if !three.success[i] {
                    XCTAssertGreaterThanOrEqual(three.loss[i], one.loss[i], "\(norm) example \(i)")
                }
                // Among runs that both fool the network the higher loss is kept too.
                if one.success[i] && three.success[i] {
                    XCTAssertGreaterThanOrEqual(three.loss[i], one.loss[i], "\(norm) example \(i)")
                }
            }
            XCTAssertLessThanOrEqual(three.accuracy, one.accuracy)
            print(
                String(
                    format: "PGD-%@ eps %.2f, 3 steps: 1 restart acc %.3f loss %.3f | 3 restarts acc %.3f loss %.3f",
                    norm.rawValue, eps, one.accuracy, one.meanLoss, three.accuracy, three.meanLoss))
            let dist = distances(three.adversarial, x)
            if norm == .linf {
                XCTAssertLessThanOrEqual(dist.linf, Double(eps) + 1e-6)
            } else {
                XCTAssertLessThanOrEqual(dist.l2.max()!, Double(eps) + 1e-5)
            }
        }
    }

    /// Epsilon 0 returns x bit for bit, with and without a random start.
    func testZeroEpsilonIsIdentity() {
        let (net, test) = Fixture.model
        let x = test.slice(0..<32)
        XCTAssertEqual(FGSM.attack(net, x: x.images, labels: x.labels, epsilon: 0).adversarial.array, x.images.array)
        for norm in ThreatNorm.allCases {
            var rng = RNG(seed: 3)
            let r = PGD.attack(
                net, x: x.images, labels: x.labels,
                config: PGDConfig(norm: norm, epsilon: 0, stepSize: 0.1, iterations: 3, restarts: 2), rng: &rng)
            XCTAssertEqual(r.adversarial.array, x.images.array, "\(norm)")
        }
    }
    /// The input gradient is each example's own: a central difference of example i's loss along
    /// a random direction matches <dL_i/dx_i, v>, whatever the batch size.
    func testInputGradientIsPerExample() {
        let (net, test) = Fixture.model
        let x = test.slice(0..<8)
        let d = x.images.count / 8
        let g = inputGradient(net, x.images, labels: x.labels)
        var rng = RNG(seed: 2)
        let v = (0..<x.images.count).map { _ in rng.normal() }
        let h: Float = 1e-3
        let plus = Tensor(shape: x.images.shape, data: zip(x.images.array, v).map { $0 + h * $1 })
        let minus = Tensor(shape: x.images.shape, data: zip(x.images.array, v).map { $0 - h * $1 })
        let lp = evaluateAttackLoss(net, plus, labels: x.labels).loss
        let lm = evaluateAttackLoss(net, minus, labels: x.labels).loss
        let ga = g.gradient.array
        for e in 0..<8 {
            let numeric = Double(lp[e] - lm[e]) / Double(2 * h)
            let analytic = (0..<d).reduce(0.0) { $0 + Double(ga[e * d + $1]) * Double(v[e * d + $1]) }
            XCTAssertEqual(numeric, analytic, accuracy: 0.02 + 0.05 * abs(analytic), "example \(e)")
        }
    }

    /// One PGD step of size epsilon from x itself is FGSM.
    func testOneStepPGDIsFGSM() {
        let (net, test) = Fixture.model
        let x = test.slice(0..<64)
        let fgsm = FGSM.attack(net, x: x.images, labels: x.labels, epsilon: linfEps)
        var rng = RNG(seed: 0)
        let pgd = PGD.attack(
            net, x: x.images, labels: x.labels,
            config: PGDConfig(norm: .linf, epsilon: linfEps, stepSize: linfEps, iterations: 1, randomStart: false),
            rng: &rng)
        for (a, b) in zip(fgsm.adversarial.array, pgd.adversarial.array) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        XCTAssertEqual(fgsm.predictions, pgd.predictions)
    }

    /// Attacking leaves the network as it was: weights, BatchNorm statistics and parameter gradients.
    func testAttackDoesNotChangeTheNetwork() {
        let (net, test) = Fixture.model
        let before = stateSnapshot(net)
        let x = test.slice(0..<32)
        var rng = RNG(seed: 4)
        _ = FGSM.attack(net, x: x.images, labels: x.labels, epsilon: linfEps)
        _ = PGD.attack(
            net, x: x.images, labels: x.labels, config: .standard(norm: .l2, epsilon: l2Eps, iterations: 2), rng: &rng)
        XCTAssertEqual(stateSnapshot(net), before)
    }
}
