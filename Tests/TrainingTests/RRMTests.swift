import Attacks
import Data
import Foundation
import Models
import NN
import TensorCore
import TestSupport
import Training
import XCTest

/// RRM carries a robust teacher's robustness into a student of another architecture, without
/// making a single adversarial example; the teacher is never modified.
final class RRMTests: XCTestCase {
    /// The attack budget of the evaluation; the teacher trains against twice as much, which
    /// gives it features robust enough to pass on in a short run.
    private let epsilon: Float = 0.1

    func testRobustnessTransfersToAnotherArchitecture() throws {
        let data = try digits()
        let teacher = try digitsTeacher(data, seed: 30, epochs: 10, pgdEpsilon: 2 * epsilon)
        let teacherWeights = teacher.namedParameters().flatMap { $0.1.value.array }

        // The mlp's own representation is narrower than the teacher's: it gets a projection.
        var config = teacher.config
        config.projection = teacher.representationWidth
        // RRM needs many steps (the paper runs 48 CIFAR epochs); 60 epochs of the 1,500 digits are
        // 1,800 steps, with a larger cross-entropy weight than the paper's so that the classifier
        // keeps up in so short a run.
        let settings = TrainingSettings(epochs: 60, batchSize: 50, learningRate: 0.05, cropPadding: 1, seed: 31)
        let natural = try ModelRegistry.make("mlp", config: teacher.config, seed: 31)
        _ = Trainer(model: natural, settings: settings).run(train: data.train, test: data.test)
        let student = try ModelRegistry.make("mlp", config: config, seed: 31)
        var rrm = settings
        rrm.objective = .rrm(RRMLoss(xentWeight: 0.02))
        let summary = Trainer(model: student, settings: rrm, teacher: teacher).run(train: data.train, test: data.test)

        let teacherRobust = pgdTestAccuracy(teacher, data.test, epsilon: epsilon)
        let naturalRobust = pgdTestAccuracy(natural, data.test, epsilon: epsilon)
        let studentRobust = pgdTestAccuracy(student, data.test, epsilon: epsilon)
        XCTAssertGreaterThan(summary.test.accuracy, 0.6, "the RRM student must still classify")
        XCTAssertGreaterThan(
            studentRobust, naturalRobust + 0.1,
            "RRM student robust \(studentRobust) vs natural \(naturalRobust) (teacher \(teacherRobust))")
        XCTAssertEqual(
            teacher.namedParameters().flatMap { $0.1.value.array }, teacherWeights, "the teacher must stay frozen")
    }
}
