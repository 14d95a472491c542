import Attacks
import Data
import Foundation
import Models
import NN
import TensorCore
import XCTest

final class SquareTests: XCTestCase {
    let eps: Float = 0.2

    /// The window covers the paper's share of the image and halves it at the paper's points,
    /// scaled to the budget; it never falls below one pixel or grows past the image.
    func testWindowSideFollowsThePaperSchedule() {
        func side(_ q: Int, _ budget: Int, _ h: Int = 28) -> Int {
            Square.windowSide(step: q, of: budget, initialFraction: 0.8, h: h, w: h)
        }
        XCTAssertEqual(side(0, 10_000), 25)  // sqrt(0.8 * 784) = 25.04
        XCTAssertEqual(side(10, 10_000), 25)
        XCTAssertEqual(side(11, 10_000), 18)  // sqrt(0.4 * 784) = 17.7
        XCTAssertEqual(side(51, 10_000), 13)  // sqrt(0.2 * 784) = 12.5
        XCTAssertEqual(side(2, 1000), 18)  // 2 of 1,000 is 20 of 10,000
        XCTAssertEqual(side(9999, 10_000), 1)  // 0.8 / 512 of 784 pixels: 1.1
        XCTAssertEqual(side(0, 10_000, 1), 1)
        XCTAssertEqual(Square.windowSide(step: 0, of: 10_000, initialFraction: 1, h: 8, w: 4), 4)  // sqrt(32) = 5.7
    }

    /// On a naturally trained model the attack stays inside the ball and [0, 1], fools a good
    /// share of the images, and what it reports (loss, prediction, success) is the network's
    /// own verdict on the images it returns.
    func testStaysInBallAndFoolsANaturalModel() {
        let (net, test) = Fixture.model
        let x = test.images
        let y = test.labels
        var rng = RNG(seed: 3)
        let r = Square.attack(net, x: x, labels: y, config: SquareConfig(epsilon: eps, queries: 300), rng: &rng)
        let dist = distances(r.adversarial, x)
        XCTAssertLessThanOrEqual(dist.linf, Double(eps) + 1e-6)
        XCTAssertTrue(dist.inBox)
        let again = evaluateAttackLoss(net, r.adversarial, labels: y)
        XCTAssertEqual(again.predictions, r.predictions)
        for (a, b) in zip(again.loss, r.loss) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        XCTAssertEqual(r.success, zip(again.predictions, y).map { $0 != $1 })
        let clean = evaluateAttackLoss(net, x, labels: y)
        let cleanAccuracy = Double(zip(clean.predictions, y).filter { $0 == $1 }.count) / Double(y.count)
        XCTAssertLessThan(r.accuracy, cleanAccuracy - 0.3, "square should fool a natural model at eps \(eps)")
    }

    /// The same generator state gives the same images; another gives others.
    func testDeterminism() {
        let (net, test) = Fixture.model
        let x = test.images.gather(rows: 0..<40)
        let y = Array(test.labels[0..<40])
        let config = SquareConfig(epsilon: eps, queries: 50)
        var a = RNG(seed: 9)
        var b = RNG(seed: 9)
        var c = RNG(seed: 10)
        let first = Square.attack(net, x: x, labels: y, config: config, rng: &a)
        XCTAssertEqual(
            first.adversarial.array, Square.attack(net, x: x, labels: y, config: config, rng: &b).adversarial.array)
        XCTAssertNotEqual(
            first.adversarial.array, Square.attack(net, x: x, labels: y, config: config, rng: &c).adversarial.array)
        XCTAssertEqual(a, b)
    }

    /// Epsilon 0 leaves every image as it is, and the network unchanged.
    func testZeroEpsilonIsIdentityAndTheNetworkIsUntouched() {
        let (net, test) = Fixture.model
        let before = stateSnapshot(net)
        var rng = RNG(seed: 1)
        let r = Square.attack(
            net, x: test.images, labels: test.labels, config: SquareConfig(epsilon: 0, queries: 20), rng: &rng)
        XCTAssertEqual(r.adversarial.array, test.images.array)
        XCTAssertEqual(stateSnapshot(net), before)
    }

    /// What the attack is for: a copy of the model whose logits are scaled up 10,000-fold predicts
    /// exactly as before, but its softmax saturates, so the cross-entropy's gradient vanishes
    /// and APGD-CE (a gradient attack) is blind. Square reads only the margin, which the scaling
    /// does not hide, and fools the copy as it fools the model.
    func testSeesThroughMaskedGradients() throws {
        let (net, test) = Fixture.model
        let masked = try ModelRegistry.make("cnn-small", config: net.config, seed: 0)
        var original: [String: Tensor] = [:]
        net.visitState(prefix: "") { name, entry in
            if case .parameter(let p) = entry { original[name] = p.value }
            if case .buffer(let b) = entry { original[name] = b.value }
        }
        masked.visitState(prefix: "") { name, entry in
            switch entry {
            case .parameter(let p): p.value = original[name]!
            case .buffer(let b): b.value = original[name]!
            case .counter: break
            }
        }
        // Scaling the classifier's weight and bias scales the logits.
        for p in [masked.classifier.weight] + (masked.classifier.bias.map { [$0] } ?? []) {
            p.value = Tensor(shape: p.value.shape, data: p.value.array.map { $0 * 10_000 })
        }
        let x = test.images.gather(rows: 0..<100)
        let y = Array(test.labels[0..<100])
        XCTAssertEqual(argmaxRowsOf(masked, x), argmaxRowsOf(net, x))

        var rng = RNG(seed: 2)
        let apgd = APGD.attack(
            masked, x: x, labels: y, config: APGDConfig(norm: .linf, epsilon: eps, iterations: 20), rng: &rng)
        let honest = APGD.attack(
            net, x: x, labels: y, config: APGDConfig(norm: .linf, epsilon: eps, iterations: 20), rng: &rng)
        var squareRNG = rng
        let square = Square.attack(masked, x: x, labels: y, config: SquareConfig(epsilon: eps, queries: 300), rng: &rng)
        let squareOnOriginal = Square.attack(
            net, x: x, labels: y, config: SquareConfig(epsilon: eps, queries: 300), rng: &squareRNG)
        XCTAssertGreaterThan(apgd.accuracy, honest.accuracy + 0.2, "scaled logits should blind APGD-CE")
        XCTAssertLessThan(square.accuracy, apgd.accuracy - 0.2, "square should see through the masking")
        // Scaling leaves every comparison of margins as it was (up to rounding on near ties).
        XCTAssertEqual(square.accuracy, squareOnOriginal.accuracy, accuracy: 0.03)
    }
}

/// The arg-max of each row of `net`'s logits at x.
private func argmaxRowsOf(_ net: Network, _ x: Tensor) -> [Int32] {
    evaluateAttackLoss(net, x, labels: [Int32](repeating: 0, count: x.dim(0))).predictions
}
