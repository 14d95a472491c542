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
}
