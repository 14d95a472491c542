import Attacks
import Data
import Evaluation
import Foundation
import ModelIO
import Models
import TensorCore
import TestSupport
import Training
import XCTest

/// A cnn-small trained naturally on the digits fixture (1,500 train / 297 test, 8x8), once.
enum DigitsModel {
    static let shared: (network: Network, test: Dataset) = {
        let data = try! digits()
        let network = try! digitsModel("cnn-small", data.train, seed: 2)
        _ = Trainer(
            model: network,
            settings: TrainingSettings(epochs: 3, batchSize: 50, learningRate: 0.05, cropPadding: 0, seed: 2)
        )
        .run(train: data.train, test: data.test)
        return (network, data.test)
    }()
}

final class RobustnessEvaluatorTests: XCTestCase {
    private let settings = RobustnessSettings(
        norm: .linf, epsilon: 0.1, epsilonText: "0.1", attacks: ["apgd-ce", "apgd-t", "pgd", "fgsm"],
        samples: 120, batchSize: 50, iterations: 10, targetClasses: 3,
        sweepSamples: 60, sweepIterations: 10, checkSamples: 60, checkIterations: [2, 5, 10], seed: 4)

    private func evaluate(_ s: RobustnessSettings? = nil) -> RobustnessReport {
        let (net, test) = DigitsModel.shared
        let model = EvaluatedModel(
            network: net, path: "digits.safetensors", sha256: String(repeating: "ab", count: 32),
            metadata: ModelMetadata(model: net, dataset: "digits", trainedBy: "natural", seed: 2))
        return try! RobustnessEvaluator.evaluate(model, test: test, settings: s ?? settings, rrmdVersion: "test")
    }

    /// The numbers hang together: clean accuracy is the network's own, each attack only removes
    /// correct images, the worst case is no better than any attack, and per-class counts add up.
    func testReportIsConsistent() {
        let (net, test) = DigitsModel.shared
        let r = evaluate()
        let subset = test.prefix(120)
        let cleanCorrect = zip(argmaxRowsOf(net, subset.images), subset.labels).filter { $0 == $1 }.count
        XCTAssertEqual(r.data.samples, 120)
        XCTAssertEqual(r.clean.correct, cleanCorrect)
        XCTAssertEqual(r.attacks.map(\.name), ["apgd-ce", "apgd-t", "pgd", "fgsm"])
        for a in r.attacks {
            XCTAssertLessThanOrEqual(a.correct, r.clean.correct, a.name)
            XCTAssertGreaterThanOrEqual(a.correct, r.worstCase.correct, a.name)
        }
        XCTAssertLessThan(
            r.worstCase.robustAccuracy, r.clean.accuracy - 0.2, "a natural model must lose accuracy at eps 0.1")
        XCTAssertEqual(r.perClass.map(\.samples).reduce(0, +), 120)
        XCTAssertEqual(
            r.perClass.map { Int(($0.robustAccuracy * Double($0.samples)).rounded()) }.reduce(0, +), r.worstCase.correct
        )
        // The sweep starts at the clean accuracy of its images and ends near zero at eps 0.5.
        let sweep = r.sweep!
        XCTAssertEqual(sweep.points.first!.epsilon, 0)
        XCTAssertEqual(sweep.points.last!.epsilon, 0.5)
        XCTAssertLessThan(sweep.points.last!.accuracy, 0.1)
        XCTAssertEqual(r.iterationsCheck!.points.map(\.iterations), [2, 5, 10])
        XCTAssertTrue(r.checks.contains { $0.name == "perturbation_within_budget" && $0.passed }, "\(r.checks)")
        XCTAssertTrue(
            r.checks.filter { !$0.passed }.isEmpty,
            "checks failing on a plain natural model: \(r.checks.filter { !$0.passed })")
    }

    /// Same seed, same report (apart from timing and the creation time).
    func testDeterministic() {
        var a = evaluate()
        let b = evaluate()
        for r in [a, b] { XCTAssertGreaterThan(r.timing.totalSeconds, 0) }
        a.timing = b.timing
        a.created = b.created
        for i in a.attacks.indices { a.attacks[i].seconds = b.attacks[i].seconds }
        XCTAssertEqual(a, b)
    }

    /// The report can be written and read back.
    func testWritesReportDirectory() throws {
        var s = settings
        s.attacks = ["fgsm"]
        s.sweepSamples = 30
        s.checkSamples = 0
        let r = evaluate(s)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rrmd-report-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = try ReportWriter.write(r, to: dir)
        XCTAssertEqual(
            Set(files.map(\.lastPathComponent)),
            ["report.json", "report.md", "accuracy_vs_epsilon.svg", "per_class.svg"])
        XCTAssertEqual(try ReportJSON.decode(Data(contentsOf: dir.appendingPathComponent("report.json"))), r)
    }

    /// A cascade reaches the same worst case (up to the random starts, which depend on how the
    /// images fall into batches) while each later attack sees only the survivors.
    func testCascadeGivesTheSameWorstCase() {
        var s = settings
        s.sweepSamples = 0
        s.checkSamples = 0
        let full = evaluate(s)
        s.cascade = true
        let cascaded = evaluate(s)
        XCTAssertLessThanOrEqual(abs(cascaded.worstCase.correct - full.worstCase.correct), 2)
        XCTAssertEqual(
            cascaded.attacks.last!.correct, cascaded.worstCase.correct, "cumulative accuracy ends at the worst case")
        XCTAssertEqual(
            cascaded.attacks.first!.correct, full.attacks.first!.correct,
            "the first attack sees every correct image either way")
        XCTAssertTrue(cascaded.attacks.allSatisfy { $0.settings["cascade"] != nil })
    }

    /// A stop request ends the evaluation at the next batch with `EvaluationStopped`.
    func testStopsWhenAsked() {
        let (net, test) = DigitsModel.shared
        let model = EvaluatedModel(
            network: net, path: "digits.safetensors", sha256: String(repeating: "ab", count: 32),
            metadata: ModelMetadata(model: net, dataset: "digits", trainedBy: "natural", seed: 2))
        var batches = 0
        XCTAssertThrowsError(
            try RobustnessEvaluator.evaluate(
                model, test: test, settings: settings, rrmdVersion: "test",
                shouldStop: {
                    batches += 1
                    return batches > 3
                })
        ) { error in
            XCTAssertTrue(error is EvaluationStopped, "\(error)")
        }
        XCTAssertEqual(batches, 4, "it must stop at the first batch after the request")
    }

    /// Bad settings are refused with a reason.
    func testSettingsProblems() {
        XCTAssertNil(settings.problem(numClasses: 10))
        var s = settings
        s.attacks = ["cw"]
        XCTAssertTrue(s.problem(numClasses: 10)!.contains("unknown attack 'cw'"))
        s = settings
        s.targetClasses = 10
        XCTAssertNotNil(s.problem(numClasses: 10))
        s = settings
        s.norm = .l2
        XCTAssertTrue(s.problem(numClasses: 10)!.contains("fgsm"))
        XCTAssertNotNil(settings.problem(numClasses: 3), "apgd-t needs 4 classes")
        s = settings
        s.attacks = ["apgd-ce", "square"]
        XCTAssertNil(s.problem(numClasses: 10))
        s.squareQueries = 0
        XCTAssertTrue(s.problem(numClasses: 10)!.contains("square queries"))
        s.squareQueries = 10
        s.norm = .l2
        XCTAssertTrue(s.problem(numClasses: 10)!.contains("L-inf"))
    }

    /// Journals written before the square attack existed identify their settings by Swift's
    /// default description of that time; it must not change, or they could not resume.
    func testDescriptionKeepsTheJournalsOfEarlierVersions() {
        let s = RobustnessSettings(
            norm: .linf, epsilon: 0.1, epsilonText: "0.1", attacks: ["apgd-ce", "apgd-t"], samples: 10000,
            targetClasses: 3, sweepSamples: 0, checkSamples: 0, cascade: true)
        XCTAssertEqual(
            "\(s)",
            "RobustnessSettings(norm: Attacks.ThreatNorm.linf, epsilon: 0.1, epsilonText: \"0.1\", attacks: "
                + "[\"apgd-ce\", \"apgd-t\"], samples: Optional(10000), batchSize: 200, iterations: 100, restarts: 1, "
                + "targetClasses: 3, sweepSamples: 0, sweepIterations: 20, checkSamples: 0, checkIterations: "
                + "[5, 10, 25, 50, 100], seed: 0, cascade: true)")
        var square = s
        square.attacks.append("square")
        XCTAssertTrue("\(square)".contains("squareQueries: 5000"), "\(square)")
    }

    /// The gradient-free attack runs after the gradient ones, alone or in a cascade; on a model with
    /// honest gradients it finds little they missed, so the masking check that compares them passes.
    func testSquareJoinsTheProtocol() {
        var s = settings
        s.attacks = ["apgd-ce", "square"]
        s.squareQueries = 100
        s.sweepSamples = 0
        s.checkSamples = 0
        for cascade in [false, true] {
            s.cascade = cascade
            let r = evaluate(s)
            XCTAssertEqual(r.attacks.map(\.name), ["apgd-ce", "square"])
            XCTAssertEqual(r.attacks[1].settings["queries"], "100")
            XCTAssertLessThan(r.attacks[1].robustAccuracy, r.clean.accuracy, "square must fool some images")
            XCTAssertLessThanOrEqual(r.worstCase.correct, r.attacks[0].correct)
            let check = r.checks.first { $0.name == MaskingChecks.gradientFreeNotStronger }!
            XCTAssertTrue(check.passed, check.detail)
            XCTAssertFalse(check.detail.lowercased().contains("not run"), check.detail)
        }
    }
}

/// Arg-max predictions of the network in inference mode.
private func argmaxRowsOf(_ net: Network, _ x: Tensor) -> [Int32] {
    evaluateAttackLoss(net, x, labels: [Int32](repeating: 0, count: x.dim(0))).predictions
}
