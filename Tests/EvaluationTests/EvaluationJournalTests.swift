import Data
import Evaluation
import FileSystem
import Foundation
import ModelIO
import TestSupport
import XCTest

/// An evaluation stopped part-way and run again with its journal gives the report an
/// uninterrupted one gives, attacking only the batches the first run had not finished.
final class EvaluationJournalTests: XCTestCase {
    private let settings = RobustnessSettings(
        norm: .linf, epsilon: 0.1, epsilonText: "0.1", attacks: ["apgd-ce", "apgd-t"],
        samples: 150, batchSize: 30, iterations: 8, targetClasses: 3,
        sweepSamples: 60, sweepIterations: 5, checkSamples: 60, checkIterations: [2, 5],
        seed: 7, cascade: true)

    private var model: EvaluatedModel {
        let net = DigitsModel.shared.network
        return EvaluatedModel(
            network: net, path: "digits.safetensors", sha256: String(repeating: "cd", count: 32),
            metadata: ModelMetadata(model: net, dataset: "digits", trainedBy: "natural", seed: 2))
    }

    /// Everything in a report that an interruption must not change (timings may).
    private func numbers(_ r: RobustnessReport) -> [Double] {
        [r.clean.accuracy, r.worstCase.robustAccuracy] + r.attacks.map { Double($0.correct) }
            + (r.sweep?.points.map(\.accuracy) ?? []) + (r.iterationsCheck?.points.map(\.accuracy) ?? [])
            + r.perClass.map(\.robustAccuracy) + r.checks.map { $0.passed ? 1 : 0 }
    }

    private func journal(_ path: String) throws -> EvaluationJournal {
        try EvaluationJournal(
            path: path,
            identity: RobustnessEvaluator.journalIdentity(model, test: DigitsModel.shared.test, settings: settings))
    }

    func testStoppedEvaluationResumesFromItsJournal() throws {
        let test = DigitsModel.shared.test
        let path = try makeTemporaryDirectory("journal", removedAfter: self).appendingPathComponent("eval.journal").path
        let whole = try RobustnessEvaluator.evaluate(model, test: test, settings: settings, rrmdVersion: "test")

        // Stop after the 5 clean batches (150 images in 30s) and 4 attacked ones.
        var asked = 0
        XCTAssertThrowsError(
            try RobustnessEvaluator.evaluate(
                model, test: test, settings: settings, rrmdVersion: "test",
                journal: try journal(path),
                shouldStop: {
                    asked += 1
                    return asked > 9
                }))
        let reopened = try journal(path)
        XCTAssertEqual(reopened.resumable, 4)
        XCTAssertFalse(reopened.discardedOther)

        // The rerun asks before every batch it attacks (and every clean batch), never for those read back.
        var attacked = 0
        let resumed = try RobustnessEvaluator.evaluate(
            model, test: test, settings: settings, rrmdVersion: "test",
            journal: reopened,
            shouldStop: {
                attacked += 1
                return false
            })
        var counted = 0
        _ = try RobustnessEvaluator.evaluate(
            model, test: test, settings: settings, rrmdVersion: "test",
            shouldStop: {
                counted += 1
                return false
            })
        XCTAssertEqual(numbers(resumed), numbers(whole))
        XCTAssertEqual(attacked, counted - 4, "the 4 journalled batches must not be attacked again")

        // A third run reads every attacked batch back.
        var third = 0
        let replayed = try RobustnessEvaluator.evaluate(
            model, test: test, settings: settings, rrmdVersion: "test",
            journal: try journal(path),
            shouldStop: {
                third += 1
                return false
            })
        XCTAssertEqual(numbers(replayed), numbers(whole))
        XCTAssertEqual(third, 5, "only the clean batches run again")
    }

    /// A line cut short by a crash is dropped, and appends after it start on a line of their own.
    func testTornLastLineIsDropped() throws {
        let path = try makeTemporaryDirectory("journal", removedAfter: self).appendingPathComponent("eval.journal").path
        let j = try journal(path)
        let batch = EvaluationJournal.Batch(fooled: [true, false, true], excess: [0, 0, 1e-9], seconds: 1.5)
        try j.record(phase: "apgd-ce", index: 0, images: [3, 4, 5], batch)
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("apgd-ce\t1\tdeadbeef\t2.0\t10".utf8))
        handle.closeFile()

        let again = try journal(path)
        XCTAssertEqual(again.resumable, 1)
        XCTAssertEqual(again.batch(phase: "apgd-ce", index: 0, images: [3, 4, 5]), batch)
        XCTAssertNil(again.batch(phase: "apgd-ce", index: 0, images: [3, 4, 6]), "other images: not the same batch")
        XCTAssertNil(again.batch(phase: "apgd-ce", index: 1, images: [6, 7]))
        try again.record(
            phase: "apgd-ce", index: 1, images: [6, 7], .init(fooled: [false, false], excess: [0, 0], seconds: 1))
        XCTAssertEqual(try journal(path).resumable, 2)
    }

    /// A disk that fills in the middle of an append (a real one: a 64 KiB tmpfs whose last free
    /// bytes are the rest of the journal's page) says ENOSPC, a cause the daemon retries, and
    /// leaves no part of the line behind; once space is freed the next append reads back whole.
    func testFullDiskMidLineSaysNoSpaceAndLeavesNoPartialLine() throws {
        let mountPoint = try makeTemporaryDirectory("journal-disk", removedAfter: self)
        guard runQuietly("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "rrmd-journal-test", mountPoint.path]) == 0
        else { throw XCTSkip("mounting a tmpfs needs root (CAP_SYS_ADMIN)") }
        defer { _ = runQuietly("/bin/umount", ["-l", mountPoint.path]) }
        let path = mountPoint.appendingPathComponent("eval.journal").path
        let j = try journal(path)
        let small = EvaluationJournal.Batch(fooled: [true, false], excess: [0, 0], seconds: 1)
        try j.record(phase: "apgd-ce", index: 0, images: [0, 1], small)
        let before = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        // Fill the disk: the journal's page keeps its free tail, smaller than the next line.
        let ballast = mountPoint.appendingPathComponent("ballast").path
        XCTAssertEqual(fillDisk(ballast), ENOSPC)
        let images = Array(2..<1_202)  // a line of about 6 KB: more than one page
        let big = EvaluationJournal.Batch(
            fooled: images.map { $0 % 3 == 0 }, excess: images.map { _ in 0 }, seconds: 2)
        XCTAssertThrowsError(try j.record(phase: "apgd-ce", index: 1, images: images, big)) { error in
            XCTAssertEqual((error as? FileSystemError)?.errno, ENOSPC, "\(error)")
        }
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, before)
        try FileManager.default.removeItem(atPath: ballast)
        try j.record(phase: "apgd-ce", index: 1, images: images, big)
        let again = try journal(path)
        XCTAssertEqual(again.resumable, 2)
        XCTAssertEqual(again.batch(phase: "apgd-ce", index: 1, images: images), big)
    }

    /// A journal of another evaluation (other settings here) is started over, not trusted.
    func testOtherEvaluationsJournalIsDiscarded() throws {
        let path = try makeTemporaryDirectory("journal", removedAfter: self).appendingPathComponent("eval.journal").path
        let j = try journal(path)
        try j.record(phase: "apgd-ce", index: 0, images: [1], .init(fooled: [true], excess: [0], seconds: 1))
        var other = settings
        other.iterations += 1
        let k = try EvaluationJournal(
            path: path,
            identity: RobustnessEvaluator.journalIdentity(model, test: DigitsModel.shared.test, settings: other))
        XCTAssertEqual(k.resumable, 0)
        XCTAssertTrue(k.discardedOther)
        k.remove()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }

    /// The same attacks on the training images are another evaluation; the test split keeps the
    /// identity it had before splits were named, so journals written then still resume.
    func testTrainingSplitIsAnotherEvaluation() throws {
        let test = DigitsModel.shared.test
        let plain = RobustnessEvaluator.journalIdentity(model, test: test, settings: settings)
        XCTAssertEqual(RobustnessEvaluator.journalIdentity(model, test: test, split: "test", settings: settings), plain)
        XCTAssertTrue(plain.contains("data=\(test.name):150 "), plain)
        XCTAssertNotEqual(
            RobustnessEvaluator.journalIdentity(model, test: test, split: "train", settings: settings), plain)
        var quick = settings
        (quick.samples, quick.sweepSamples, quick.checkSamples) = (30, 0, 0)
        let report = try RobustnessEvaluator.evaluate(
            model, test: test, split: "train", settings: quick, rrmdVersion: "test")
        XCTAssertEqual(report.data.split, "train", "a report says which images it attacked")
    }
}
