import Foundation
import XCTest

@testable import Spool

final class PublishTests: SpoolTestCase {
    /// What a runner leaves in `out/`, plus the leftover of an interrupted atomic write.
    func writeResults(_ job: ClaimedJob) throws {
        let students = job.output.appendingPathComponent("students")
        try FileManager.default.createDirectory(at: students, withIntermediateDirectories: true)
        try write([7, 7], to: students.appendingPathComponent("resnet20.safetensors.zst"))
        try write(Array("{}".utf8), to: job.output.appendingPathComponent("report.json"))
        try write(Array("# report".utf8), to: job.output.appendingPathComponent("report.md"))
        try write([0], to: job.output.appendingPathComponent(".report.md.1f2e.tmp"))
        try write([1], to: job.directory.appendingPathComponent("state.safetensors"))
    }

    func testPublishMakesDoneAndRemovesWork() throws {
        let job = try submitAndClaim(teacherBytes(3), name: "robust.safetensors.zst")
        try writeResults(job)
        let done = try spool.publish(job)
        XCTAssertEqual(done, layout.doneDirectory(job.id))
        XCTAssertEqual(names(done), ["job.json", "report.json", "report.md", "students", "teacher.safetensors.zst"])
        XCTAssertEqual(names(done.appendingPathComponent("students")), ["resnet20.safetensors.zst"])
        XCTAssertEqual(
            [UInt8](try Data(contentsOf: done.appendingPathComponent("teacher.safetensors.zst"))), teacherBytes(3))
        XCTAssertEqual(
            try JSONDecoder.spool.decode(
                JobRecord.self, from: Data(contentsOf: done.appendingPathComponent("job.json"))), job.record)
        XCTAssertEqual(names(layout.work), [])
        XCTAssertEqual(try spool.findDone(sha256: job.record.sha256), job.id)
        XCTAssertEqual(try spool.findDone(sha256: job.record.sha256.uppercased()), job.id)
        XCTAssertNil(try spool.findDone(sha256: String(repeating: "0", count: 64)))
        XCTAssertEqual(names(layout.done), [".index.json", job.id.rawValue])
        XCTAssertEqual(try spool.snapshot().done, [job.id.rawValue])
        XCTAssertThrowsError(try spool.publish(job)) { error in
            guard case .missing? = error as? SpoolError else { return XCTFail("\(error)") }
        }
    }

    func testPublishWithoutOutputStillPublishesTheTeacher() throws {
        let job = try submitAndClaim([1, 2, 3])
        try spool.publish(job)
        XCTAssertEqual(names(layout.doneDirectory(job.id)), ["job.json", "teacher.safetensors.zst"])
    }

    func testDuplicateAfterPublishIsRejected() throws {
        let first = try submitAndClaim(teacherBytes(4), name: "one.safetensors")
        XCTAssertNil(try spool.findDone(sha256: first.record.sha256))
        try spool.publish(first)
        let second = try submitAndClaim(teacherBytes(4), name: "two.safetensors")
        let existing = try XCTUnwrap(spool.findDone(sha256: second.record.sha256))
        XCTAssertEqual(existing, first.id)
        try spool.rejectDuplicate(second, of: existing)
        let failed = layout.failedDirectory(second.id)
        XCTAssertEqual(names(failed), ["error.json", "job.json", "teacher.safetensors"])
        let error = try jsonObject(failed.appendingPathComponent("error.json"))
        XCTAssertEqual(error["kind"] as? String, "duplicate")
        XCTAssertEqual(
            error["what"] as? String, "identical to job \(first.id) already done (sha256 \(first.record.sha256))")
        XCTAssertEqual(error["what_to_do"] as? String, "use done/\(first.id); delete done/\(first.id) first to redo it")
        XCTAssertEqual(names(layout.work), [])
        XCTAssertEqual(names(layout.done), [".index.json", first.id.rawValue], "nothing published twice")
    }

    func testIndexIsRebuiltWhenMissingOrStale() throws {
        let a = try submitAndClaim(teacherBytes(5), name: "a.safetensors")
        try spool.publish(a)
        let b = try submitAndClaim(teacherBytes(6), name: "b.safetensors")
        try spool.publish(b)
        try FileManager.default.removeItem(at: layout.done.appendingPathComponent(".index.json"))
        XCTAssertEqual(try spool.findDone(sha256: b.record.sha256), b.id)
        XCTAssertTrue(FileManager.default.fileExists(atPath: layout.done.appendingPathComponent(".index.json").path))
        // The operator deletes done/a to redo it: the index follows.
        try FileManager.default.removeItem(at: layout.doneDirectory(a.id))
        XCTAssertNil(try spool.findDone(sha256: a.record.sha256))
        XCTAssertEqual(try spool.findDone(sha256: b.record.sha256), b.id)
        // A damaged index is rebuilt too.
        try write(Array("{ nope".utf8), to: layout.done.appendingPathComponent(".index.json"))
        XCTAssertEqual(try spool.findDone(sha256: b.record.sha256), b.id)
    }
}

extension JSONDecoder {
    /// A decoder for the spool's records (ISO 8601 dates).
    static var spool: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
