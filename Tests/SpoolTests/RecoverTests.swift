import Foundation
import XCTest

@testable import Spool

#if canImport(Glibc)
import Glibc
#endif

/// Each test builds, by hand, what a crash at one point of a transition leaves on disk (the
/// table in docs/spool.md), then checks what `recover()` makes of it.
final class RecoverTests: SpoolTestCase {
    func testNothingToDoOnACleanSpool() throws {
        let recovery = try spool.recover()
        XCTAssertEqual(recovery, SpoolRecovery())
    }

    func testHalfClaimIsRemovedAndTheTeacherStaysQueued() throws {
        let id = try submit([1, 2], name: "a.safetensors")
        // Crash after mkdir work/<job>, before the rename.
        try FileManager.default.createDirectory(at: layout.workDirectory(id), withIntermediateDirectories: false)
        let recovery = try spool.recover()
        XCTAssertEqual(recovery.resumable, [])
        XCTAssertEqual(recovery.notes.count, 1)
        XCTAssertEqual(names(layout.work), [])
        let job = try XCTUnwrap(spool.claim(try XCTUnwrap(spool.scanIncoming().entries.first)))
        XCTAssertEqual(job.id, id)
    }

    func testClaimWithoutJobJSONIsFinished() throws {
        let id = JobID()
        let directory = layout.workDirectory(id)
        // Crash after the rename into work/<job>/, before job.json.
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        try write(teacherBytes(8), to: directory.appendingPathComponent("teacher.safetensors"))
        try write([0], to: directory.appendingPathComponent(".job.json.3a.tmp"))
        let recovery = try spool.recover()
        let job = try XCTUnwrap(recovery.resumable.first)
        XCTAssertEqual(recovery.resumable.count, 1)
        XCTAssertEqual(job.id, id)
        XCTAssertEqual(job.record.attempts, 1)
        XCTAssertEqual(job.record.sha256, try sha256sum(job.teacher))
        XCTAssertEqual(names(directory), ["job.json", "teacher.safetensors"])
    }

    func testClaimedJobsResumeInIdOrderWithTheirState() throws {
        let first = try submitAndClaim(teacherBytes(9), name: "a.safetensors")
        let second = try submitAndClaim(teacherBytes(10), name: "b.safetensors")
        // The daemon died running the second job: its run marker is still there.
        try spool.beginRun(second)
        // The runner's state and a partly written out/.
        try write([1, 2, 3], to: second.directory.appendingPathComponent("state.safetensors"))
        try FileManager.default.createDirectory(
            at: second.output.appendingPathComponent("students"), withIntermediateDirectories: true)
        try write([4], to: second.output.appendingPathComponent("students/resnet20.safetensors.zst"))
        // A publication that stopped before its commit point wrote out/job.json only.
        try write([5], to: second.output.appendingPathComponent("job.json"))
        let recovery = try spool.recover()
        XCTAssertEqual(recovery.resumable.map(\.id), [first.id, second.id].sorted())
        // Only the job that was running counts the restart, and only once: recovery clears the
        // marker, so a second restart before it runs again counts nothing.
        XCTAssertEqual(recovery.resumable.map(\.record.attempts), first.id < second.id ? [1, 2] : [2, 1])
        XCTAssertEqual(try spool.recover().resumable.map(\.record.attempts), first.id < second.id ? [1, 2] : [2, 1])
        XCTAssertFalse(FileManager.default.fileExists(atPath: second.directory.appendingPathComponent(".running").path))
        // A run that ends with the daemon alive (stopped, or waiting for a retry) clears its mark.
        try spool.beginRun(first)
        try spool.endRun(first)
        XCTAssertEqual(try spool.recover().resumable.first { $0.id == first.id }?.record.attempts, 1)
        let resumed = try XCTUnwrap(recovery.resumable.first { $0.id == second.id })
        XCTAssertEqual(resumed.record.sha256, second.record.sha256)
        XCTAssertEqual(names(second.directory), ["job.json", "out", "state.safetensors", "teacher.safetensors"])
        XCTAssertEqual(names(second.output.appendingPathComponent("students")), ["resnet20.safetensors.zst"])
        // And it publishes normally afterwards.
        try spool.publish(resumed)
        XCTAssertEqual(names(layout.doneDirectory(second.id)), ["job.json", "students", "teacher.safetensors"])
    }

    func testCommittedPublicationIsFinished() throws {
        let job = try submitAndClaim(teacherBytes(11))
        try FileManager.default.createDirectory(at: job.output, withIntermediateDirectories: true)
        try write(Array("{}".utf8), to: job.output.appendingPathComponent("report.json"))
        // Crash after the teacher moved into out/, before out/ was renamed.
        try Records.write(job.record, to: job.output.appendingPathComponent("job.json").path)
        XCTAssertEqual(rename(job.teacher.path, job.output.appendingPathComponent(job.record.teacher).path), 0)
        let recovery = try spool.recover()
        XCTAssertEqual(recovery.resumable, [])
        XCTAssertEqual(names(layout.doneDirectory(job.id)), ["job.json", "report.json", "teacher.safetensors.zst"])
        XCTAssertEqual(names(layout.work), [])
        XCTAssertEqual(try spool.findDone(sha256: job.record.sha256), job.id)
    }

    func testWorkLeftAfterThePublishRenameIsRemovedWithoutDuplicating() throws {
        let job = try submitAndClaim(teacherBytes(12))
        try write([1], to: job.directory.appendingPathComponent("state.safetensors"))
        // Crash right after out/ became done/<job>: work/<job>/ is still there.
        try FileManager.default.createDirectory(at: job.output, withIntermediateDirectories: true)
        XCTAssertEqual(rename(job.teacher.path, job.output.appendingPathComponent(job.record.teacher).path), 0)
        try Records.write(job.record, to: job.output.appendingPathComponent("job.json").path)
        XCTAssertEqual(rename(job.output.path, layout.doneDirectory(job.id).path), 0)
        let recovery = try spool.recover()
        XCTAssertEqual(recovery.resumable, [])
        XCTAssertEqual(names(layout.work), [])
        XCTAssertEqual(names(layout.done), [".index.json", job.id.rawValue])
        XCTAssertEqual(names(layout.doneDirectory(job.id)), ["job.json", "teacher.safetensors.zst"])
        XCTAssertEqual(try spool.findDone(sha256: job.record.sha256), job.id)
    }

    func testUncommittedFailureIsUndoneAndCommittedOneFinished() throws {
        let undone = try submitAndClaim(teacherBytes(13), name: "a.safetensors")
        // Crash after mkdir fail/, before error.json.
        try FileManager.default.createDirectory(
            at: undone.directory.appendingPathComponent("fail"), withIntermediateDirectories: false)
        let finished = try submitAndClaim(teacherBytes(14), name: "b.safetensors")
        // Crash after error.json, with the teacher moved but job.json not yet.
        let staging = finished.directory.appendingPathComponent("fail")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: false)
        let failure = SpoolFailure(
            kind: "diverged", what: "loss became NaN", whereText: "epoch 3", whatToDo: "lower the learning rate")
        try Records.write(
            FailureRecord(job: finished.id, failure: failure, time: Date()),
            to: staging.appendingPathComponent("error.json").path)
        XCTAssertEqual(rename(finished.teacher.path, staging.appendingPathComponent(finished.record.teacher).path), 0)

        let recovery = try spool.recover()
        XCTAssertEqual(recovery.resumable.map(\.id), [undone.id])
        XCTAssertEqual(names(undone.directory), ["job.json", "teacher.safetensors"])
        XCTAssertEqual(names(layout.failedDirectory(finished.id)), ["error.json", "job.json", "teacher.safetensors"])
        XCTAssertEqual(try spool.failure(of: finished.id)?.failure, failure)
        XCTAssertEqual(names(layout.work), [undone.id.rawValue])
    }

    func testSpecialFileInWorkIsFailedUnopened() throws {
        let id = JobID()
        let directory = layout.workDirectory(id)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        let fifo = directory.appendingPathComponent("teacher.safetensors")
        XCTAssertEqual(mkfifo(fifo.path, 0o600), 0)
        var recovery = SpoolRecovery()
        finishes(
            within: 5,
            unblock: { [layout] in
                _ = open(fifo.path, O_WRONLY | O_NONBLOCK)
                _ = open(
                    layout.failedDirectory(id).appendingPathComponent("teacher.safetensors").path, O_WRONLY | O_NONBLOCK
                )
            }
        ) {
            recovery = try self.spool.recover()
        }
        XCTAssertEqual(recovery.resumable, [])
        XCTAssertEqual(kind(layout.failedDirectory(id).appendingPathComponent("teacher.safetensors")), .fifo)
        XCTAssertEqual(try spool.failure(of: id)?.failure.kind, "special-file")
    }

    func testMissingTeacherIsFailedAndForeignDirectoriesAreLeftAlone() throws {
        let job = try submitAndClaim([1])
        try FileManager.default.removeItem(at: job.teacher)
        try FileManager.default.createDirectory(
            at: layout.work.appendingPathComponent("notes"), withIntermediateDirectories: false)
        let recovery = try spool.recover()
        XCTAssertEqual(recovery.resumable, [])
        XCTAssertEqual(try spool.failure(of: job.id)?.failure.kind, "missing-teacher")
        XCTAssertEqual(names(layout.failedDirectory(job.id)), ["error.json", "job.json"])
        XCTAssertEqual(names(layout.work), ["notes"])
        XCTAssertTrue(recovery.notes.contains { $0.hasPrefix("work/notes:") })
    }

    func testTemporariesAndAbandonedSubmissionsAreRemoved() throws {
        let old = layout.tmp.appendingPathComponent("\(JobID())--old.safetensors.part")
        let young = layout.tmp.appendingPathComponent("\(JobID())--young.safetensors.part")
        try write([1], to: old)
        try write([1], to: young)
        setModified(old, secondsSince1970: Int(Date().timeIntervalSince1970) - 7200)
        try write([1], to: layout.root.appendingPathComponent(".status.json.9a.tmp"))
        try write([1], to: layout.done.appendingPathComponent(".index.json.9a.tmp"))
        let recovery = try spool.recover()
        XCTAssertEqual(names(layout.tmp), [young.lastPathComponent], "a copy in progress is kept")
        XCTAssertFalse(names(layout.root).contains(".status.json.9a.tmp"))
        XCTAssertEqual(names(layout.done), [".index.json"])
        XCTAssertEqual(recovery.notes.count, 1)
    }
}
