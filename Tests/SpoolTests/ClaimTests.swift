import FileSystem
import Foundation
import XCTest

@testable import Spool

#if canImport(Glibc)
import Glibc
#endif

final class ClaimTests: SpoolTestCase {
    func testClaimMovesTheTeacherAndWritesJobJSON() throws {
        let bytes = teacherBytes(2, count: 70_000)
        let id = try submit(bytes, name: "robust.safetensors.zst")
        let entry = try XCTUnwrap(spool.scanIncoming().entries.first)
        let job = try XCTUnwrap(spool.claim(entry))
        XCTAssertEqual(job.id, id, "the id in the submitted name is kept")
        XCTAssertEqual(names(layout.incoming), [])
        XCTAssertEqual(job.directory, layout.workDirectory(id))
        XCTAssertEqual(names(job.directory), ["job.json", "teacher.safetensors.zst"])
        XCTAssertEqual(job.teacher.lastPathComponent, "teacher.safetensors.zst")
        XCTAssertEqual([UInt8](try Data(contentsOf: job.teacher)), bytes)
        XCTAssertEqual(job.record.sha256, try sha256sum(job.teacher))
        XCTAssertEqual(job.record.size, UInt64(bytes.count))
        XCTAssertEqual(job.record.originalName, "robust.safetensors.zst")
        XCTAssertEqual(job.record.attempts, 1)
        XCTAssertLessThan(abs(job.record.claimed.timeIntervalSinceNow), 5)
        let json = try jsonObject(job.recordFile)
        XCTAssertEqual(Set(json.keys), ["id", "original_name", "teacher", "sha256", "size", "claimed", "attempts"])
        XCTAssertEqual(json["id"] as? String, id.rawValue)
        XCTAssertEqual(json["sha256"] as? String, job.record.sha256)
        XCTAssertEqual(job.output.path, job.directory.appendingPathComponent("out").path)
        XCTAssertEqual(try spool.snapshot(), SpoolSnapshot(incoming: [], work: [id.rawValue], done: [], failed: []))
    }

    func testEmptyFileIsClaimed() throws {
        let job = try submitAndClaim([], name: "empty.safetensors")
        XCTAssertEqual(job.record.size, 0)
        XCTAssertEqual(job.record.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testFileDroppedByHandGetsAFreshId() throws {
        try write([5, 6], to: layout.incoming.appendingPathComponent("hand.pt.gz"))
        let entry = try XCTUnwrap(spool.scanIncoming().entries.first)
        XCTAssertNil(entry.job)
        let job = try XCTUnwrap(spool.claim(entry))
        XCTAssertLessThan(abs(job.id.date.timeIntervalSinceNow), 5)
        XCTAssertEqual(job.record.originalName, "hand.pt.gz")
        XCTAssertEqual(job.record.teacher, "teacher.pt.gz")
    }

    func testAnIdAlreadyInUseIsNotReused() throws {
        let id = try submit([1], name: "a.safetensors")
        try FileManager.default.createDirectory(at: layout.doneDirectory(id), withIntermediateDirectories: false)
        let job = try XCTUnwrap(spool.claim(try XCTUnwrap(spool.scanIncoming().entries.first)))
        XCTAssertNotEqual(job.id, id)
        XCTAssertEqual(job.record.originalName, "a.safetensors")
    }

    func testAnEntryThatVanishedIsNotAnError() throws {
        try submit([1], name: "a.safetensors")
        let entry = try XCTUnwrap(spool.scanIncoming().entries.first)
        try FileManager.default.removeItem(at: layout.incoming.appendingPathComponent(entry.name))
        XCTAssertNil(try spool.claim(entry))
        XCTAssertEqual(names(layout.work), [], "no half-claim left")
        // Claimed twice: the second claimer finds nothing.
        try submit([2], name: "b.safetensors")
        let second = try XCTUnwrap(spool.scanIncoming().entries.first)
        XCTAssertNotNil(try spool.claim(second))
        XCTAssertNil(try spool.claim(second))
        XCTAssertEqual(names(layout.work).count, 1)
    }

    func testAFailedClaimLeavesTheTeacherInIncoming() throws {
        try submit([1], name: "a.safetensors")
        let entry = try XCTUnwrap(spool.scanIncoming().entries.first)
        // work/ replaced by a file: the claim cannot make its directory.
        try FileManager.default.removeItem(at: layout.work)
        try write([], to: layout.work)
        XCTAssertThrowsError(try spool.claim(entry)) { error in
            XCTAssertEqual((error as? FileSystemError)?.errno, ENOTDIR)
            XCTAssertEqual((error as? FileSystemError)?.isTransient, false)
        }
        XCTAssertEqual(names(layout.incoming), [entry.name])
    }

    func testPermissionErrorIsTransientAndLosesNothing() throws {
        try XCTSkipIf(geteuid() == 0, "root ignores directory permissions")
        try submit([1], name: "a.safetensors")
        let entry = try XCTUnwrap(spool.scanIncoming().entries.first)
        XCTAssertEqual(chmod(layout.incoming.path, 0o550), 0)
        XCTAssertThrowsError(try spool.claim(entry)) { error in
            XCTAssertEqual((error as? FileSystemError)?.errno, EACCES)
            XCTAssertEqual((error as? FileSystemError)?.isTransient, true)
        }
        XCTAssertEqual(chmod(layout.incoming.path, 0o750), 0)
        XCTAssertEqual(names(layout.work), [])
        XCTAssertNotNil(try spool.claim(entry), "the retry succeeds")

        // Failing after the rename (the teacher cannot be read): the teacher goes back to incoming/.
        try submit([2], name: "b.safetensors")
        let unreadable = try XCTUnwrap(spool.scanIncoming().entries.first)
        XCTAssertEqual(chmod(layout.incoming.appendingPathComponent(unreadable.name).path, 0o000), 0)
        XCTAssertThrowsError(try spool.claim(unreadable)) { error in
            XCTAssertEqual((error as? FileSystemError)?.errno, EACCES)
        }
        XCTAssertEqual(names(layout.incoming), [unreadable.name])
        XCTAssertEqual(names(layout.work).count, 1, "only the first job")
        XCTAssertEqual(chmod(layout.incoming.appendingPathComponent(unreadable.name).path, 0o640), 0)
        XCTAssertEqual(try spool.claim(unreadable)?.id, unreadable.job)
    }
}
