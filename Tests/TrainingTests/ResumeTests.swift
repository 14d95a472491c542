import Attacks
import Checkpoint
import Data
import Foundation
import Models
import TensorCore
import TestSupport
import Training
import XCTest

/// A run stopped at any step boundary, saved, and continued by a fresh trainer in the same
/// process ends with the same weights, bit for bit, as an uninterrupted run.
final class ResumeTests: XCTestCase {
    private func statePath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("rrmd-state-\(UUID()).safetensors.zst").path
    }

    /// Runs `settings` uninterrupted, then again stopped after each of `stops` (global step
    /// counts) and resumed from the saved file by new trainer and model objects.
    private func checkResume(_ settings: TrainingSettings, stops: [Int], teacher: Network? = nil) throws {
        let data = try digits()
        let reference = try digitsModel("cnn-small", data.train, seed: settings.seed)
        let full = Trainer(model: reference, settings: settings, teacher: teacher).run(
            train: data.train, test: data.test)

        let path = statePath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var done = 0
        var summary: TrainingSummary?
        for stop in stops + [Int.max] {
            // Resumed segments start from another initialisation, which proves every weight
            // comes from the state file.
            let resuming = FileManager.default.fileExists(atPath: path)
            let model = try digitsModel("cnn-small", data.train, seed: settings.seed + (resuming ? 100 : 0))
            let trainer = Trainer(model: model, settings: settings, teacher: teacher)
            if resuming { try trainer.restoreState(from: path) }
            summary = trainer.run(train: data.train, test: data.test, shouldStop: { done >= stop }, epochEnd: { _ in })
            { _ in done += 1 }
            if summary == nil {
                try trainer.saveState(to: path)
            } else {
                let (a, b) = (allWeights(model), allWeights(reference))
                XCTAssertEqual(a.count, b.count)
                let differing = zip(a, b).filter { $0 != $1 }.count
                XCTAssertEqual(
                    differing, 0,
                    "\(differing) of \(a.count) values differ after stops at \(stops) from an uninterrupted run")
            }
        }
        XCTAssertEqual(summary?.epochs.map(\.loss), full.epochs.map(\.loss))
        XCTAssertEqual(summary?.test, full.test)
    }

    func testNaturalRunResumesExactly() throws {
        // 1,500 images, batch 50: 30 steps an epoch; stop mid-epoch, at an epoch boundary, and again.
        try checkResume(
            TrainingSettings(epochs: 3, batchSize: 50, learningRate: 0.05, cropPadding: 1, seed: 4), stops: [7, 30, 61])
    }

    func testAdversarialRunResumesExactly() throws {
        try checkResume(
            TrainingSettings(
                epochs: 2, batchSize: 50, learningRate: 0.05, cropPadding: 0, seed: 6,
                objective: .fgsmRS(epsilon: 0.1, stepSize: 0.125)), stops: [13])
    }

    func testRRMRunResumesExactly() throws {
        let data = try digits()
        let teacher = try digitsTeacher(data, seed: 50, epochs: 1)
        try checkResume(
            TrainingSettings(
                epochs: 2, batchSize: 50, learningRate: 0.05, cropPadding: 1, seed: 8,
                objective: .rrm(RRMLoss())), stops: [17], teacher: teacher)
    }

    /// Replays resume exactly too: each replay is an optimiser step inside one batch step, and a
    /// stop comes only between batches.
    func testRRMReplayRunResumesExactly() throws {
        let data = try digits()
        let teacher = try digitsTeacher(data, seed: 50, epochs: 1)
        try checkResume(
            TrainingSettings(
                epochs: 1, batchSize: 50, learningRate: 0.05, cropPadding: 1, seed: 9,
                objective: .rrm(RRMLoss(replays: 2, replayEpsilon: 0.1))), stops: [11], teacher: teacher)
    }

    /// The paper's RRM settings give the fingerprint rrmd 0.1.0 wrote before the replay and noise
    /// options existed, so a daemon upgraded in the middle of a job continues it.
    func testPaperRRMFingerprintIsUnchangedByNewerOptions() throws {
        let data = try digits()
        let teacher = try digitsModel("cnn-small", data.train, seed: 50)
        let trainer = Trainer(
            model: try digitsModel("cnn-small", data.train, seed: 1),
            settings: TrainingSettings(objective: .rrm(RRMLoss())), teacher: teacher)
        XCTAssertTrue(
            trainer.fingerprint.contains(
                "objective: Training.TrainingObjective.rrm(Training.RRMLoss(xentWeight: 0.005, featureLoss: "
                    + "NN.FeatureLoss.cosine)))"
            ), trainer.fingerprint)
        // The model part as rrmd 0.1.0 printed it (Fashion-MNIST's statistics, as in a state file of then).
        let config = ModelConfig(
            channels: 1, height: 28, width: 28, numClasses: 10, mean: [0.28577054], std: [0.35321227])
        XCTAssertEqual(
            "\(config)",
            "ModelConfig(channels: 1, height: 28, width: 28, numClasses: 10, widthMultiplier: 1.0, mean: "
                + "[0.28577054], std: [0.35321227], projection: nil)"
        )
        var projected = config
        projected.projection = 128
        XCTAssertEqual(
            "\(projected)",
            "ModelConfig(channels: 1, height: 28, width: 28, numClasses: 10, widthMultiplier: 1.0, mean: "
                + "[0.28577054], std: [0.35321227], projection: Optional(128))"
        )
        projected.projectionBias = true
        XCTAssertTrue("\(projected)".hasSuffix("projection: Optional(128), projectionBias: true)"))
        let replaying = Trainer(
            model: try digitsModel("cnn-small", data.train, seed: 1),
            settings: TrainingSettings(objective: .rrm(RRMLoss(replays: 2, replayEpsilon: 0.1))), teacher: teacher)
        XCTAssertNotEqual(
            replaying.fingerprint, trainer.fingerprint, "a replaying run must not continue a paper run's state")
    }

    /// Settings print exactly as rrmd 0.1.0's state files have them (copied from one) while the
    /// epsilon ramp is off, so those runs continue after an upgrade.
    func testSettingsFingerprintIsUnchangedByTheRampOption() {
        let settings = TrainingSettings(
            epochs: 50, batchSize: 128, learningRate: 0.1, cropPadding: 1, seed: 0,
            objective: .pgdAT(PGDConfig(norm: .linf, epsilon: 0.1, stepSize: Float(2.5 * 0.1 / 7.0), iterations: 7)))
        XCTAssertEqual(
            "\(settings)",
            "TrainingSettings(epochs: 50, batchSize: 128, learningRate: 0.1, schedule: "
                + "Training.TrainingSettings.ScheduleKind.cosine, sgd: NN.SGD.Settings(momentum: 0.9, dampening: 0.0, "
                    + "weightDecay: 0.0005, nesterov: false), cropPadding: 1, horizontalFlip: true, seed: 0, "
                        + "objective: Training.TrainingObjective.pgdAT(Attacks.PGDConfig(norm: "
                            + "Attacks.ThreatNorm.linf, epsilon: 0.1, stepSize: 0.035714287, iterations: 7, restarts: "
                                + "1, randomStart: true)))"
        )
        var ramped = settings
        ramped.epsilonRampEpochs = 2
        XCTAssertTrue("\(ramped)".hasSuffix("randomStart: true)), epsilonRampEpochs: 2.0)"), "\(ramped)")
    }

    /// A state file from a run with other settings is refused, naming both runs.
    func testOtherRunsStateIsRefused() throws {
        let data = try digits()
        let path = statePath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let settings = TrainingSettings(epochs: 1, batchSize: 50, seed: 1)
        let a = Trainer(model: try digitsModel("cnn-small", data.train, seed: 1), settings: settings)
        try a.saveState(to: path)
        var other = settings
        other.learningRate = 0.2
        let b = Trainer(model: try digitsModel("cnn-small", data.train, seed: 1), settings: other)
        XCTAssertThrowsError(try b.restoreState(from: path)) { error in
            guard case TrainingStateError.otherRun = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("delete it"))
        }
    }
}
