import Attacks
import Data
import Foundation
import Models
import TensorCore
import TestSupport
import Training
import XCTest

/// PGD-AT and Fast-AT make models that resist the attack they were trained against, which a
/// naturally trained twin does not; runs are reproducible; the metadata says how it was trained.
final class AdversarialTrainingTests: XCTestCase {
    let epsilon: Float = 0.1

    /// Robust accuracy of `model` on the digits test set under PGD-10 at `epsilon`.
    private func pgdAccuracy(_ model: Network, _ test: Dataset) -> Double {
        var rng = RNG(seed: 11)
        return PGD.attack(
            model, x: test.images, labels: test.labels,
            config: .standard(norm: .linf, epsilon: epsilon, iterations: 10), rng: &rng
        ).accuracy
    }

    /// Trains cnn-small on digits with `objective`; returns the model, its clean and PGD accuracy.
    private func train(
        _ objective: TrainingObjective, seed: UInt64 = 5
    ) throws -> (Network, clean: Double, robust: Double) {
        let data = try digits()
        let model = try digitsModel("cnn-small", data.train, seed: seed)
        let settings = TrainingSettings(
            epochs: 6, batchSize: 50, learningRate: 0.05, cropPadding: 0, seed: seed, objective: objective)
        XCTAssertNil(settings.problem())
        let summary = Trainer(model: model, settings: settings).run(train: data.train, test: data.test)
        return (model, summary.test.accuracy, pgdAccuracy(model, data.test))
    }

    func testAdversarialTrainingBuysRobustness() throws {
        let natural = try train(.natural)
        let pgd = try train(.pgdAT(.standard(norm: .linf, epsilon: epsilon, iterations: 5)))
        let fast = try train(.fgsmRS(epsilon: epsilon, stepSize: 1.25 * epsilon))
        let free = try train(.freeAT(epsilon: epsilon, replays: 3))
        // Natural training is accurate but brittle; both adversarial methods hold up under PGD.
        XCTAssertGreaterThan(natural.clean, 0.85)
        XCTAssertLessThan(natural.robust, 0.6, "a naturally trained digits model should fall to PGD at eps 0.1")
        XCTAssertGreaterThan(
            pgd.robust, natural.robust + 0.15, "PGD-AT robust \(pgd.robust) vs natural \(natural.robust)")
        XCTAssertGreaterThan(
            fast.robust, natural.robust + 0.1, "Fast-AT robust \(fast.robust) vs natural \(natural.robust)")
        XCTAssertGreaterThan(
            free.robust, natural.robust + 0.1, "Free-AT robust \(free.robust) vs natural \(natural.robust)")
        print(
            "digits PGD-10 at \(epsilon): natural \(natural.robust), pgd-at \(pgd.robust), fgsm-rs \(fast.robust), "
                + "free-at \(free.robust)"
        )
        XCTAssertGreaterThanOrEqual(pgd.clean, pgd.robust)
    }

    /// Same seed, same objective: bit-identical weights (attack starts come from the seed).
    func testAdversarialTrainingIsDeterministic() throws {
        let objective = TrainingObjective.pgdAT(.standard(norm: .linf, epsilon: epsilon, iterations: 2))
        let a = try train(objective, seed: 9).0
        let b = try train(objective, seed: 9).0
        XCTAssertEqual(
            a.namedParameters().flatMap { $0.1.value.array }, b.namedParameters().flatMap { $0.1.value.array })
    }

    func testObjectiveDescribesItself() {
        let pgd = TrainingObjective.pgdAT(PGDConfig(norm: .l2, epsilon: 0.5, stepSize: 0.1, iterations: 7))
        XCTAssertEqual(pgd.methodName, "pgd-at")
        XCTAssertEqual(pgd.threatModel, "l2:0.5")
        XCTAssertNotNil(ThreatModel(pgd.threatModel))
        XCTAssertEqual(TrainingObjective.fgsmRS(epsilon: 0.1, stepSize: 0.125).threatModel, "linf:0.1")
        XCTAssertEqual(TrainingObjective.natural.threatModel, "none")
        XCTAssertEqual(TrainingObjective.freeAT(epsilon: 0.1, replays: 4).threatModel, "linf:0.1")
        XCTAssertEqual(TrainingObjective.freeAT(epsilon: 0.1, replays: 4).methodName, "free-at")
        XCTAssertNotNil(TrainingSettings(objective: .freeAT(epsilon: 0.1, replays: 1)).problem())
        XCTAssertNotNil(TrainingSettings(objective: .fgsmRS(epsilon: 0, stepSize: 0.1)).problem())
    }

    /// The ramp scales radius and step linearly per step over its epochs, then leaves the
    /// objective as configured; settings that cannot ramp are refused.
    func testEpsilonRampGrowsTheRadiusStepByStep() throws {
        let full = PGDConfig(norm: .linf, epsilon: 0.3, stepSize: 0.1, iterations: 7)
        var settings = TrainingSettings(epochs: 4, objective: .pgdAT(full))
        settings.epsilonRampEpochs = 2
        XCTAssertNil(settings.problem())
        func radius(_ t: Int) -> (Float, Float) {
            guard case .pgdAT(let c) = settings.objective(atStep: t, stepsPerEpoch: 10) else {
                XCTFail("not PGD-AT")
                return (0, 0)
            }
            return (c.epsilon, c.stepSize)
        }
        XCTAssertEqual(radius(0).0, 0.3 / 20, accuracy: 1e-7)
        XCTAssertEqual(radius(0).1, 0.1 / 20, accuracy: 1e-7)
        XCTAssertEqual(radius(9).0, 0.15, accuracy: 1e-7)
        XCTAssertEqual(radius(19).0, 0.3)
        XCTAssertEqual(radius(35).0, 0.3)
        XCTAssertEqual(settings.objective(atStep: 19, stepsPerEpoch: 10), settings.objective)
        settings.objective = .fgsmRS(epsilon: 0.2, stepSize: 0.25)
        XCTAssertEqual(
            settings.objective(atStep: 4, stepsPerEpoch: 10), .fgsmRS(epsilon: 0.2 * 0.25, stepSize: 0.25 * 0.25))
        settings.epsilonRampEpochs = 5
        XCTAssertNotNil(settings.problem(), "a ramp longer than the run")
        settings.epsilonRampEpochs = 1
        settings.objective = .natural
        XCTAssertNotNil(settings.problem(), "nothing to ramp in natural training")
        XCTAssertEqual(settings.objective(atStep: 0, stepsPerEpoch: 10), .natural)
    }

    /// A ramped run trains on weaker attacks early, so it ends elsewhere than the same run at
    /// full radius throughout, and its state is not mistaken for that run's.
    func testTheTrainerFollowsTheRamp() throws {
        let data = try digits()
        let objective = TrainingObjective.pgdAT(.standard(norm: .linf, epsilon: 0.3, iterations: 2))
        var settings = TrainingSettings(
            epochs: 1, batchSize: 50, learningRate: 0.05, cropPadding: 0, seed: 3, objective: objective)
        let plain = Trainer(model: try digitsModel("cnn-small", data.train, seed: 3), settings: settings)
        _ = plain.run(train: data.train, test: data.test)
        settings.epsilonRampEpochs = 1
        let ramped = Trainer(model: try digitsModel("cnn-small", data.train, seed: 3), settings: settings)
        _ = ramped.run(train: data.train, test: data.test)
        XCTAssertNotEqual(
            plain.model.namedParameters().flatMap { $0.1.value.array },
            ramped.model.namedParameters().flatMap { $0.1.value.array })
        XCTAssertNotEqual(plain.fingerprint, ramped.fingerprint)
        XCTAssertTrue(ramped.fingerprint.contains("epsilonRampEpochs: 1.0)"), ramped.fingerprint)
    }
    /// RRM's replays ramp like an attack: their radius (which is also their step) grows step by
    /// step and nothing else of the loss changes; without replays there is nothing to ramp.
    func testRRMReplaysRampTheirRadius() {
        let full = RRMLoss(xentWeight: 0.5, replays: 4, replayEpsilon: 0.3)
        var settings = TrainingSettings(epochs: 4, objective: .rrm(full))
        settings.epsilonRampEpochs = 2
        XCTAssertNil(settings.problem())
        var early = full
        early.replayEpsilon = 0.3 / 2
        XCTAssertEqual(settings.objective(atStep: 9, stepsPerEpoch: 10), .rrm(early))
        XCTAssertEqual(settings.objective(atStep: 19, stepsPerEpoch: 10), .rrm(full))
        settings.objective = .rrm(RRMLoss(xentWeight: 0.005))
        XCTAssertNotNil(settings.problem(), "the paper's single clean step has no radius to ramp")
    }

    /// A distillation whose replays ramp trains on other images early than one at full radius,
    /// so it ends elsewhere, and its state is not mistaken for that run's.
    func testTheTrainerRampsRRMReplays() throws {
        let data = try digits()
        let teacher = try digitsModel("cnn-small", data.train, seed: 4)
        var settings = TrainingSettings(
            epochs: 1, batchSize: 50, learningRate: 0.05, cropPadding: 0, seed: 3,
            objective: .rrm(RRMLoss(xentWeight: 0.5, replays: 2, replayEpsilon: 0.3)))
        let plain = Trainer(
            model: try digitsModel("cnn-small", data.train, seed: 3), settings: settings, teacher: teacher)
        _ = plain.run(train: data.train, test: data.test)
        settings.epsilonRampEpochs = 1
        let ramped = Trainer(
            model: try digitsModel("cnn-small", data.train, seed: 3), settings: settings, teacher: teacher)
        _ = ramped.run(train: data.train, test: data.test)
        XCTAssertNotEqual(
            plain.model.namedParameters().flatMap { $0.1.value.array },
            ramped.model.namedParameters().flatMap { $0.1.value.array })
        XCTAssertNotEqual(plain.fingerprint, ramped.fingerprint)
    }
}
