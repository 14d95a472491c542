import Attacks
import Checkpoint
import Data
import Foundation
import Models
import TensorCore
import TestSupport
import XCTest

@testable import Training

/// The per-epoch robustness probe measures what an attack leaves, and its guard takes back the
/// best epoch's exact weights, from memory or from a state file.
final class RobustProbeTests: XCTestCase {
    private func trained(_ data: (train: Dataset, test: Dataset), epochs: Int = 1) throws -> Network {
        let model = try digitsModel("cnn-small", data.train, seed: 3)
        let settings = TrainingSettings(epochs: epochs, batchSize: 50, learningRate: 0.05, cropPadding: 0, seed: 3)
        _ = Trainer(model: model, settings: settings).run(train: data.train, test: data.test)
        return model
    }

    func testZeroRadiusProbeIsCleanAccuracyAndAttackOnlyLowersIt() throws {
        let data = try digits()
        let model = try trained(data)
        let images = data.test.prefix(200)
        let clean = evaluateAccuracy(model, on: images).accuracy
        XCTAssertGreaterThan(clean, 0.5, "the model must have learned something for the comparison to mean anything")
        let none = RobustProbe.standard(images: images, count: 200, norm: .linf, epsilon: 0, iterations: 5)
        XCTAssertEqual(none.measure(model), clean, accuracy: 1e-12)
        let probe = RobustProbe.standard(images: images, count: 200, norm: .linf, epsilon: 0.1, iterations: 20)
        let robust = probe.measure(model)
        XCTAssertLessThan(robust, clean - 0.05, "an undefended model loses accuracy at 0.1")
        XCTAssertEqual(probe.measure(model), robust, "the same seed attacks the same way every epoch")
    }

    func testMarginDecidesRestoring() {
        let images = Dataset(
            name: "empty", images: Tensor(shape: [0, 1, 8, 8]), labels: [], numClasses: 10, allowsHorizontalFlip: false)
        var probe = RobustProbe.standard(images: images, norm: .linf, epsilon: 0.1)
        XCTAssertTrue(probe.shouldRestore(best: 0.72, last: 0.50))
        XCTAssertFalse(probe.shouldRestore(best: 0.72, last: 0.65), "7 points is within the default margin of 10")
        probe.restoreBelowBest = nil
        XCTAssertFalse(probe.shouldRestore(best: 0.72, last: 0.10), "without a margin the probe only measures")
    }

    /// Two epochs, stopped after the first and resumed by a fresh trainer from the state file;
    /// when the last epoch's probe lies far under the first's, the run ends with the first
    /// epoch's weights, bit for bit.
    func testGuardRestoresTheBestEpochFromTheStateFile() throws {
        let data = try digits()
        let settings = TrainingSettings(epochs: 2, batchSize: 50, learningRate: 0.05, cropPadding: 0, seed: 5)
        // A radius of 1 fools every image in every epoch, so only epoch 1 is ever "best" (ties
        // keep the first) and its weights are the snapshot.
        let probe = RobustProbe.standard(images: data.test, count: 64, norm: .linf, epsilon: 1, iterations: 5)
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("rrmd-probe-\(UUID()).safetensors.zst").path
        defer { try? FileManager.default.removeItem(atPath: path) }

        let first = Trainer(model: try digitsModel("cnn-small", data.train, seed: 5), settings: settings)
        first.probe = probe
        var epochOne: [Float] = []
        let stopped = try first.run(
            train: data.train, test: data.test, shouldStop: { first.position.epoch >= 1 },
            epochEnd: { t in
                epochOne = allWeights(t.model)
                try t.saveState(to: path)
            })
        XCTAssertNil(stopped)
        XCTAssertEqual(first.position.history.count, 1)
        XCTAssertEqual(first.position.history[0].robust, 0, "a radius of 1 leaves nothing")

        // Another initialisation: every weight, the snapshot included, must come from the file.
        let second = Trainer(model: try digitsModel("cnn-small", data.train, seed: 99), settings: settings)
        second.probe = probe
        try second.restoreState(from: path)
        XCTAssertNotNil(second.bestState, "the state file carries the best epoch's weights")
        let summary = second.run(train: data.train, test: data.test)
        XCTAssertEqual(summary.robust, [0, 0])
        XCTAssertNil(summary.restoredEpoch, "no epoch lost anything")
        XCTAssertNotEqual(allWeights(second.model), epochOne, "the second epoch changed the weights")

        // The guard's decision on a run that lost 40 points after its first epoch.
        second.position.history[0].robust = 0.6
        second.position.history[1].robust = 0.2
        XCTAssertEqual(second.restoreBestIfLost(), 0)
        XCTAssertEqual(allWeights(second.model), epochOne, "the first epoch's weights, bit for bit")
    }

    /// The in-memory copy of the best epoch is not disturbed by the training that follows it
    /// (the weights are updated in place; the copy must not share their storage).
    func testGuardRestoresTheBestEpochWithinOneRun() throws {
        let data = try digits()
        let settings = TrainingSettings(epochs: 3, batchSize: 50, learningRate: 0.05, cropPadding: 0, seed: 7)
        let trainer = Trainer(model: try digitsModel("cnn-small", data.train, seed: 7), settings: settings)
        trainer.probe = RobustProbe.standard(images: data.test, count: 64, norm: .linf, epsilon: 1, iterations: 2)
        var epochOne: [Float] = []
        let summary = try trainer.run(
            train: data.train, test: data.test, shouldStop: { false },
            epochEnd: { t in if t.position.epoch == 1 { epochOne = allWeights(t.model) } })
        XCTAssertEqual(summary?.robust, [0, 0, 0])
        XCTAssertNotEqual(allWeights(trainer.model), epochOne)
        trainer.position.history[0].robust = 0.5
        XCTAssertEqual(trainer.restoreBestIfLost(), 0)
        XCTAssertEqual(allWeights(trainer.model), epochOne, "the first epoch's weights, bit for bit")
    }

    func testGuardKeepsTheLastEpochWithoutAMargin() throws {
        let data = try digits()
        let settings = TrainingSettings(epochs: 2, batchSize: 50, learningRate: 0.05, cropPadding: 0, seed: 5)
        var probe = RobustProbe.standard(images: data.test, count: 64, norm: .linf, epsilon: 1, iterations: 2)
        probe.restoreBelowBest = nil
        let trainer = Trainer(model: try digitsModel("cnn-small", data.train, seed: 5), settings: settings)
        trainer.probe = probe
        _ = trainer.run(train: data.train, test: data.test)
        XCTAssertNil(trainer.bestState, "measuring only keeps no copy of the weights")
        let last = allWeights(trainer.model)
        trainer.position.history[0].robust = 0.6
        trainer.position.history[1].robust = 0.2
        XCTAssertNil(trainer.restoreBestIfLost())
        XCTAssertEqual(allWeights(trainer.model), last)
    }
}
