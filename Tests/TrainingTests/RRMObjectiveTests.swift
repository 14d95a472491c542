import TensorCore
import Training
import XCTest

/// The input transformations of the RRM objective's options, checked element by element against
/// their definitions.
final class RRMObjectiveTests: XCTestCase {
    /// A replay moves each pixel by epsilon along its gradient's sign, never beyond epsilon of the
    /// clean pixel and never outside [0, 1]; a zero gradient leaves the pixel where it was.
    func testReplayImagesStepAndProject() {
        let loss = RRMLoss(replays: 2, replayEpsilon: 0.1)
        let clean = Tensor(shape: [1, 1, 1, 6], data: [0.5, 0.5, 0.95, 0.02, 0.5, 0.3])
        let current = Tensor(shape: [1, 1, 1, 6], data: [0.5, 0.58, 0.95, 0.02, 0.45, 0.3])
        let gradient = Tensor(shape: [1, 1, 1, 6], data: [2, 1, 1, -1, -3, 0])
        let next = loss.replayImages(clean: clean, current: current, gradient: gradient).array
        let expected: [Float] = [0.6, 0.6, 1.0, 0.0, 0.4, 0.3]
        for (a, b) in zip(next, expected) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }

    /// With a step of half the radius a replay moves each pixel by epsilon / 2 and still never
    /// leaves the ball; the setting shows in the summary and, only when set, in the fingerprint.
    func testReplayStepFraction() {
        var loss = RRMLoss(replays: 2, replayEpsilon: 0.1)
        XCTAssertFalse("\(loss)".contains("replayStepFraction"), "the default keeps older state files valid")
        loss.replayStepFraction = 0.5
        let clean = Tensor(shape: [1, 1, 1, 5], data: [0.5, 0.5, 0.97, 0.5, 0.3])
        let current = Tensor(shape: [1, 1, 1, 5], data: [0.5, 0.58, 0.97, 0.45, 0.3])
        let gradient = Tensor(shape: [1, 1, 1, 5], data: [2, 1, 1, -3, 0])
        let next = loss.replayImages(clean: clean, current: current, gradient: gradient).array
        let expected: [Float] = [0.55, 0.6, 1.0, 0.4, 0.3]
        for (a, b) in zip(next, expected) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        XCTAssertTrue("\(loss)".hasSuffix(", replayStepFraction: 0.5)"), "\(loss)")
        XCTAssertTrue(TrainingObjective.rrm(loss).summary.contains("replay-step=0.5eps"))
        loss.replayStepFraction = 1.5
        XCTAssertNotNil(
            TrainingSettings(objective: .rrm(loss)).problem(), "a step longer than the radius is refused")
    }

    /// Matching noise stays within its half-width and [0, 1], is drawn from the given generator
    /// (the same stream gives the same noise), and is absent by default.
    func testMatchingNoiseIsBoundedAndSeeded() {
        var rng = RNG(seed: 5)
        let images = Tensor(shape: [2, 1, 4, 4], data: (0..<32).map { Float($0) / 31 })
        XCTAssertEqual(RRMLoss().matchingImages(images, rng: &rng).array, images.array)
        let noisy = RRMLoss(inputNoise: 0.1)
        var a = RNG(seed: 9)
        var b = RNG(seed: 9)
        let x = noisy.matchingImages(images, rng: &a)
        let y = noisy.matchingImages(images, rng: &b)
        XCTAssertEqual(x.array, y.array)
        XCTAssertNotEqual(x.array, images.array)
        for (v, c) in zip(x.array, images.array) {
            XCTAssertLessThanOrEqual(abs(v - c), 0.1 + 1e-6)
            XCTAssertTrue(v >= 0 && v <= 1)
        }
    }
    /// Replays from a random start begin at a uniform point of the replay ball (clipped to
    /// [0, 1]), which an epsilon ramp shrinks with the radius; the option needs replays and
    /// stands in for the matching noise, so both at once are refused.
    func testRandomReplayStartIsUniformInTheRampedBall() {
        var rng = RNG(seed: 2)
        let images = Tensor(shape: [4, 1, 8, 8], data: (0..<256).map { Float($0 % 17) / 16 })
        let loss = RRMLoss(xentWeight: 0.5, replays: 4, replayEpsilon: 0.3, replayStart: .random)
        var settings = TrainingSettings(epochs: 2, objective: .rrm(loss))
        settings.epsilonRampEpochs = 1
        for (step, radius) in [(4, Float(0.3) * 5 / 10), (15, Float(0.3))] {
            guard case .rrm(let at) = settings.objective(atStep: step, stepsPerEpoch: 10) else {
                return XCTFail("not RRM")
            }
            let start = at.matchingImages(images, rng: &rng).array
            let moves = zip(start, images.array).map { $0 - $1 }
            XCTAssertLessThanOrEqual(moves.map(abs).max()!, radius + 1e-6)
            // Interior pixels (not clipped) spread over the whole ball, both signs.
            let interior = zip(moves, images.array).filter { $0.1 >= radius && $0.1 <= 1 - radius }.map(\.0)
            XCTAssertGreaterThan(interior.max()!, radius * 0.8)
            XCTAssertLessThan(interior.min()!, -radius * 0.8)
            XCTAssertTrue(start.allSatisfy { $0 >= 0 && $0 <= 1 })
        }
        XCTAssertEqual(
            RRMLoss(replays: 4, replayEpsilon: 0.3).matchingImages(images, rng: &rng).array, images.array,
            "an RRMLoss made without a start replays from the batch itself (the paper's matching)")
        XCTAssertNotNil(TrainingSettings(objective: .rrm(RRMLoss(replayStart: .random))).problem())
        XCTAssertNotNil(
            TrainingSettings(
                objective: .rrm(RRMLoss(inputNoise: 0.1, replays: 4, replayEpsilon: 0.3, replayStart: .random))
            ).problem())
        XCTAssertNil(TrainingSettings(objective: .rrm(loss)).problem())
    }

    /// What `rrmd distill` and the daemon choose when not told: replays from a random start with
    /// the radius ramped over the first epoch; the paper's single step has nothing to start or ramp.
    func testToolDefaults() {
        XCTAssertEqual(RRMLoss.defaultReplayStart(replays: 4), .random)
        XCTAssertEqual(RRMLoss.defaultReplayStart(replays: 1), .clean)
        XCTAssertEqual(RRMLoss.defaultEpsilonRamp(replayStart: .random), 1)
        XCTAssertEqual(RRMLoss.defaultEpsilonRamp(replayStart: .clean), 0)
        XCTAssertEqual(RRMLoss.defaultXentWeight(replays: 4), 0.5)
    }
}
