import Attacks
import Data
import Foundation
import Models
import NN
import TensorCore
import TestSupport
import Training
import XCTest

/// The study's yardstick (docs/rrm-study.md, "The yardstick in CI") in small: a student of the
/// teacher's own architecture, distilled with replays, keeps most of a PGD-trained teacher's
/// robustness, is far more robust than the same network trained naturally, and more robust than
/// the paper's single-step recipe makes it; with the labels weighted 0.5 at the replayed images
/// it keeps more still, from the clean batch or, as rrmd's defaults do, from a random start with
/// the radius ramped over the first epoch.
final class RRMTransferTests: XCTestCase {
    private let epsilon: Float = 0.1

    /// Robust accuracies (PGD-10 on the digits test set) of one seed's teacher, natural network
    /// and students: the paper's recipe, two replays with the paper's weight, two with 0.5, and two
    /// with 0.5 from a random start, ramped over the first epoch (rrmd's defaults).
    private func measure(
        seed: UInt64
    ) throws -> (
        teacher: Double, natural: Double, paper: Double, replays: Double, replaysX05: Double, randomStart: Double
    ) {
        let data = try digits()
        let teacher = try digitsTeacher(data, seed: seed, epochs: 10, pgdEpsilon: epsilon)
        let settings = TrainingSettings(epochs: 20, batchSize: 50, learningRate: 0.05, cropPadding: 1, seed: seed + 100)
        let natural = try digitsModel("cnn-small", data.train, seed: seed + 100)
        _ = Trainer(model: natural, settings: settings).run(train: data.train, test: data.test)
        func student(_ loss: RRMLoss) throws -> Double {
            let student = try digitsModel("cnn-small", data.train, seed: seed + 100)
            var rrm = settings
            rrm.objective = .rrm(loss)
            rrm.epsilonRampEpochs = loss.replays > 1 ? RRMLoss.defaultEpsilonRamp(replayStart: loss.replayStart) : 0
            _ = Trainer(model: student, settings: rrm, teacher: teacher).run(train: data.train, test: data.test)
            return pgdTestAccuracy(student, data.test, epsilon: epsilon)
        }
        return (
            pgdTestAccuracy(teacher, data.test, epsilon: epsilon),
            pgdTestAccuracy(natural, data.test, epsilon: epsilon),
            try student(RRMLoss()), try student(RRMLoss(replays: 2, replayEpsilon: epsilon)),
            try student(RRMLoss(xentWeight: RRMLoss.defaultXentWeight(replays: 2), replays: 2, replayEpsilon: epsilon)),
            try student(
                RRMLoss(
                    xentWeight: RRMLoss.defaultXentWeight(replays: 2), replays: 2, replayEpsilon: epsilon,
                    replayStart: .random))
        )
    }

    /// Measured with seeds 40, 41 and 42 (teacher PGD accuracy 75.1 / 76.1 / 74.1 %): the
    /// replaying student kept 63 / 83 / 71 % of it and beat natural training by 26 / 31 / 27
    /// points and the paper's recipe by 30 / 30 / 33; with weight 0.5 it kept 89 / 84 / 91 % and
    /// beat natural training by 45 / 31 / 41 points and the paper's recipe by 50 / 30 / 48, never
    /// less robust than with the paper's weight (+20 / +0.3 / +14). Weight 0.5 with replays from a
    /// random start and the radius ramped over the first epoch (rrmd's defaults) kept 88 / 81 / 87 %
    /// and beat natural training by 45 / 30 / 39 points and the paper's recipe by 49 / 28 / 45
    /// (without the ramp: 88 / 85 / 90 %, 45 / 33 / 41, 49 / 31 / 47). The bounds are the smallest of
    /// those less a few points, for the float differences between CPUs; this test runs seed 40
    /// (RRMD_TRANSFER_SEEDS=40,41,42 runs all three and prints them).
    func testSameArchitectureStudentKeepsTheTeachersRobustness() throws {
        let seeds =
            ProcessInfo.processInfo.environment["RRMD_TRANSFER_SEEDS"]?.split(separator: ",").compactMap { UInt64($0) }
            ?? [40]
        for seed in seeds {
            let r = try measure(seed: seed)
            let context =
                "seed \(seed): teacher \(r.teacher), natural \(r.natural), paper recipe \(r.paper), two replays "
                + "\(r.replays), two replays with weight 0.5 \(r.replaysX05), the same from a random start "
                + "\(r.randomStart)"
            print(context)
            XCTAssertGreaterThan(r.teacher, 0.7, context)
            XCTAssertGreaterThanOrEqual(
                r.replays / r.teacher, 0.55, "share of the teacher's robustness kept: " + context)
            XCTAssertGreaterThanOrEqual(r.replays - r.natural, 0.2, "margin over natural training: " + context)
            XCTAssertGreaterThanOrEqual(r.replays - r.paper, 0.2, "margin over the paper's recipe: " + context)
            XCTAssertGreaterThanOrEqual(r.replaysX05 / r.teacher, 0.78, "share kept with weight 0.5: " + context)
            XCTAssertGreaterThanOrEqual(
                r.replaysX05 - r.natural, 0.28, "margin over natural training with weight 0.5: " + context)
            XCTAssertGreaterThanOrEqual(
                r.replaysX05 - r.paper, 0.27, "margin over the paper's recipe with weight 0.5: " + context)
            XCTAssertGreaterThanOrEqual(
                r.replaysX05 - r.replays, -0.02, "weight 0.5 against the paper's weight: " + context)
            XCTAssertGreaterThanOrEqual(
                r.randomStart / r.teacher, 0.78, "share kept with a random start: " + context)
            XCTAssertGreaterThanOrEqual(
                r.randomStart - r.natural, 0.27, "margin over natural training, random start: " + context)
            XCTAssertGreaterThanOrEqual(
                r.randomStart - r.paper, 0.26, "margin over the paper's recipe, random start: " + context)
        }
    }
}
