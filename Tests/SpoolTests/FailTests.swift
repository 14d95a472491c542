import Foundation
import XCTest

@testable import Spool

final class FailTests: SpoolTestCase {
    func testFailWritesErrorJSONBesideTheTeacherAsReceived() throws {
        let job = try submitAndClaim(teacherBytes(7), name: "broken.safetensors")
        try FileManager.default.createDirectory(at: job.output, withIntermediateDirectories: true)
        try write([1], to: job.output.appendingPathComponent("partial.json"))
        try write([1], to: job.directory.appendingPathComponent("state.safetensors"))
        let failure = SpoolFailure(
            kind: "invalid-checkpoint", what: "header length 2^40 exceeds the file",
            whereText: "broken.safetensors", whatToDo: "export the teacher again")
        try spool.fail(job, error: failure)
        let failed = layout.failedDirectory(job.id)
        XCTAssertEqual(names(failed), ["error.json", "job.json", "teacher.safetensors"])
        XCTAssertEqual(
            [UInt8](try Data(contentsOf: failed.appendingPathComponent("teacher.safetensors"))), teacherBytes(7))
        let error = try jsonObject(failed.appendingPathComponent("error.json"))
        XCTAssertEqual(Set(error.keys), ["job", "kind", "what", "where", "what_to_do", "time"])
        XCTAssertEqual(error["job"] as? String, job.id.rawValue)
        XCTAssertEqual(error["kind"] as? String, "invalid-checkpoint")
        XCTAssertEqual(error["what"] as? String, failure.what)
        XCTAssertEqual(error["where"] as? String, failure.whereText)
        XCTAssertEqual(error["what_to_do"] as? String, failure.whatToDo)
        let record = try XCTUnwrap(spool.failure(of: job.id))
        XCTAssertEqual(record.failure, failure)
        XCTAssertLessThan(abs(record.time.timeIntervalSinceNow), 5)
        XCTAssertEqual(names(layout.work), [], "the runner's state goes with the job")
        XCTAssertEqual(try spool.snapshot().failed, [job.id.rawValue])
        XCTAssertThrowsError(try spool.fail(job, error: failure)) { error in
            guard case .missing? = error as? SpoolError else { return XCTFail("\(error)") }
        }
    }

    func testFailureRoundTripsThroughJSON() throws {
        let failure = SpoolFailure(kind: "k", what: "w", whereText: "here", whatToDo: "do")
        let data = try JSONEncoder().encode(failure)
        XCTAssertEqual(
            Set(try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any]).keys),
            ["kind", "what", "where", "what_to_do"])
        XCTAssertEqual(try JSONDecoder().decode(SpoolFailure.self, from: data), failure)
    }
}
