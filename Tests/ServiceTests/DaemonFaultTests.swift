import Checkpoint
import Data
import Evaluation
import FileSystem
import Foundation
import ModelIO
import Models
import Spool
import TestSupport
import Training
import XCTest

@testable import Service

/// Failures from the environment (a full disk, a directory that cannot be written, too little
/// memory) and half-finished attempts: retried or failed with a reason, never lost.
final class DaemonFaultTests: DaemonTestCase {
    /// A student that cannot be written (a full disk, permissions; here an immutable directory)
    /// is a transient error: the job waits in work/ and is published once the cause is gone. It
    /// used to be failed as a "bad-checkpoint", blaming the teacher.
    func testAStudentThatCannotBeWrittenIsRetriedNotFailed() throws {
        let cfg = try config(
            students: ["cnn-small"], epochs: 30, service: "rescan_seconds = 60\nretry_initial_seconds = 1")
        let job = try rrmd(["submit", "--config", cfg, try teacherFile()]).output.trimmingCharacters(
            in: .whitespacesAndNewlines)
        let served = try start(["serve", "--config", cfg])
        defer {
            if served.process.isRunning {
                served.process.terminate()
                served.process.waitUntilExit()
            }
        }
        let students = root.appendingPathComponent("spool/work/\(job)/out/students").path
        var deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: students) && Date() < deadline && served.process.isRunning {
            usleep(2_000)
        }
        try withImmutable(students) {
            deadline = Date().addingTimeInterval(60)
            while occurrences(of: " retry ", in: served.log) == 0 && Date() < deadline && served.process.isRunning {
                usleep(20_000)
            }
            let log = String(decoding: try Data(contentsOf: served.log), as: UTF8.self)
            XCTAssertTrue(log.contains("will be retried"), log)
            XCTAssertTrue(jobs(in: "failed").isEmpty, log)
            XCTAssertEqual(jobs(in: "work"), [job], log)
        }
        deadline = Date().addingTimeInterval(60)
        while jobs(in: "done").isEmpty && Date() < deadline && served.process.isRunning { usleep(20_000) }
        let log = String(decoding: try Data(contentsOf: served.log), as: UTF8.self)
        XCTAssertEqual(jobs(in: "done"), [job], log)
        XCTAssertTrue(jobs(in: "failed").isEmpty, log)
    }

    /// A disk that fills up while the teacher's evaluation writes its journal or report (a real
    /// one: the spool on a 4 MiB tmpfs, filled to the last byte while the teacher is attacked)
    /// leaves the job in work/ to be retried; once space is freed it is published whole, with no
    /// temporary file left behind.
    func testAFullDiskWhileReportingIsRetriedNotFailed() throws {
        let mountPoint = root.appendingPathComponent("small-disk")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
        guard runQuietly("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "rrmd-test", mountPoint.path]) == 0 else {
            throw XCTSkip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
        }
        defer { _ = runQuietly("/bin/umount", ["-l", mountPoint.path]) }
        // Enough attack work that the teacher's evaluation lasts a while: the disk is filled then.
        let cfg = try config(
            spool: "small-disk/spool", service: "rescan_seconds = 60\nretry_initial_seconds = 1", samples: 200,
            iterations: 40)
        let job = try rrmd(["submit", "--config", cfg, try teacherFile()]).output.trimmingCharacters(
            in: .whitespacesAndNewlines)
        let served = try start(["serve", "--config", cfg])
        defer {
            if served.process.isRunning {
                served.process.terminate()
                served.process.waitUntilExit()
            }
        }
        var deadline = Date().addingTimeInterval(60)
        while occurrences(of: "attacking the teacher", in: served.log) == 0 && Date() < deadline
            && served.process.isRunning
        { usleep(2_000) }
        let ballast = mountPoint.appendingPathComponent("ballast")
        let filled = fillDisk(ballast.path)
        XCTAssertEqual(filled, ENOSPC, "the ballast should have filled the disk")
        deadline = Date().addingTimeInterval(120)
        while occurrences(of: " retry ", in: served.log) == 0 && Date() < deadline && served.process.isRunning {
            usleep(20_000)
        }
        var log = String(decoding: try Data(contentsOf: served.log), as: UTF8.self)
        let retry = log.split(separator: "\n").first { $0.contains(" retry ") }.map(String.init) ?? ""
        // The teacher's evaluation writes its journal as it goes and its report at the end:
        // whichever met the full disk first.
        XCTAssertTrue(
            retry.contains("reports/teacher") || retry.contains("evaluation-teacher.journal"),
            "the first write to fail should be the teacher's evaluation journal or report: \(log)")
        XCTAssertTrue(retry.contains("No space left on device") || retry.contains("ENOSPC"), retry)
        XCTAssertTrue(jobs(in: "failed", spool: "small-disk/spool").isEmpty, log)
        XCTAssertEqual(jobs(in: "work", spool: "small-disk/spool"), [job], log)
        try FileManager.default.removeItem(at: ballast)
        deadline = Date().addingTimeInterval(120)
        while jobs(in: "done", spool: "small-disk/spool").isEmpty && Date() < deadline && served.process.isRunning {
            usleep(20_000)
        }
        log = String(decoding: try Data(contentsOf: served.log), as: UTF8.self)
        XCTAssertEqual(jobs(in: "done", spool: "small-disk/spool"), [job], log)
        XCTAssertTrue(jobs(in: "failed", spool: "small-disk/spool").isEmpty, log)
        let done = mountPoint.appendingPathComponent("spool/done/\(job)")
        for file in [
            "report.json", "report.md", "reports/teacher/report.json", "reports/mlp/report.json",
            "students/mlp.safetensors.zst",
        ] {
            XCTAssertTrue(
                FileManager.default.fileExists(atPath: done.appendingPathComponent(file).path),
                "\(file) missing: \(log)")
        }
        let leftovers = (FileManager.default.enumerator(atPath: mountPoint.path)?.allObjects as? [String] ?? [])
            .filter { $0.hasSuffix(".tmp") || $0.contains("/.tmp") || $0.hasSuffix(".part") }
        XCTAssertEqual(leftovers, [], "temporary files left behind")
    }

    /// A configuration whose students cannot be trained in the memory the service may use
    /// (resnet20 ×8 in batches of 1024, about 1.4 GiB beyond model and data, under `ulimit -v`
    /// 1.75 GiB, of which the process has reserved about 0.9 GiB by then) fails the job with the
    /// estimate and what to change; rrmd is not stopped by a failed allocation. (The limit leaves
    /// room for what the process reserves before any job: thread stacks, malloc arenas and
    /// OpenBLAS's 128 MiB buffer per thread that calls it, which OpenBLAS retries for ever when
    /// the address space has no room for it.)
    func testAJobTooLargeForTheMemoryLimitFailsWithAReason() throws {
        let cfg = try config(students: ["resnet20"], width: 8, batchSize: 1024)
        let job = try rrmd(["submit", "--config", cfg, try teacherFile()]).output.trimmingCharacters(
            in: .whitespacesAndNewlines)
        let limited = try start(
            ["-c", "ulimit -v 1835008; exec \"$0\" serve --once --config \"$1\"", Self.binary, cfg],
            executable: "/bin/sh")
        let deadline = Date().addingTimeInterval(120)
        while limited.process.isRunning && Date() < deadline { usleep(20_000) }
        if limited.process.isRunning {
            limited.process.terminate()
            XCTFail("serve --once did not finish")
        }
        limited.process.waitUntilExit()
        let log = String(decoding: try Data(contentsOf: limited.log), as: UTF8.self)
        XCTAssertEqual(limited.process.terminationReason, .exit, log)
        XCTAssertEqual(limited.process.terminationStatus, 0, log)
        XCTAssertEqual(jobs(in: "failed"), [job], log)
        let record = try XCTUnwrap(
            try Spool(root: root.appendingPathComponent("spool")).failure(of: try XCTUnwrap(JobID(job))), log)
        XCTAssertEqual(record.failure.kind, "not-enough-memory", log)
        XCTAssertTrue(
            record.failure.what.contains("training resnet20 ×8.0 with batches of 1024 needs about"), record.failure.what
        )
        XCTAssertTrue(record.failure.whatToDo.contains("batch_size"), record.failure.whatToDo)
    }

    /// The errors a job meets are classified by their errno wherever they come from.
    func testTransientErrorsAreRecognisedInEveryErrorType() throws {
        XCTAssertEqual(
            JobRunner.transientErrno(of: FileSystemError.system(operation: "write", path: "/x", errno: ENOSPC)), ENOSPC)
        XCTAssertEqual(
            JobRunner.transientErrno(of: FileSystemError.system(operation: "rename", path: "/x", errno: EIO)), EIO)
        XCTAssertEqual(JobRunner.transientErrno(of: CocoaError(.fileWriteOutOfSpace)), ENOSPC)
        // A report file that met a full disk is retried like a checkpoint; one that can never be
        // written (no errno, or a permanent one) is not.
        XCTAssertEqual(
            JobRunner.transientErrno(
                of: ReportWriterError(
                    file: "/x/report.md", reason: "write failed", hint: "",
                    cause: .system(operation: "write", path: "/x/report.md", errno: ENOSPC))), ENOSPC)
        XCTAssertNil(JobRunner.transientErrno(of: ReportWriterError(file: "/x/report.json", reason: "NaN", hint: "")))
        XCTAssertNil(
            JobRunner.transientErrno(
                of: ReportWriterError(
                    file: "/x", reason: "not a directory", hint: "",
                    cause: .system(operation: "create directory", path: "/x", errno: ENOTDIR))))
        XCTAssertEqual(
            JobRunner.transientErrno(
                of: NSError(
                    domain: NSCocoaErrorDomain, code: CocoaError.fileWriteUnknown.rawValue,
                    userInfo: [NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(EDQUOT))])), EDQUOT)
        XCTAssertNil(JobRunner.transientErrno(of: FileSystemError.system(operation: "open", path: "/x", errno: ENOENT)))
        XCTAssertNil(JobRunner.transientErrno(of: CheckpointError.truncated(source: "/x", size: 3)))
        XCTAssertNil(JobRunner.transientErrno(of: SpoolError.missing(path: "/x", reason: "gone")))
        // What Foundation really throws when a directory cannot be created.
        let parent = root.appendingPathComponent("locked")
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        try withImmutable(parent.path) {
            XCTAssertThrowsError(
                try FileManager.default.createDirectory(
                    at: parent.appendingPathComponent("students"), withIntermediateDirectories: true)
            ) {
                XCTAssertEqual(JobRunner.transientErrno(of: $0), EPERM, "\($0)")
            }
        }
    }

    /// An attempt that got past publish's commit point (the teacher is in out/) is finished on
    /// the next attempt; it used to find no teacher and fail the job.
    func testARetriedJobFinishesAPublicationThatWasCommitted() throws {
        let (spool, job, runner, _) = try claimedJob()
        try FileManager.default.createDirectory(at: job.output, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: job.output.appendingPathComponent("report.json"))
        try FileManager.default.moveItem(at: job.teacher, to: job.output.appendingPathComponent(job.record.teacher))
        XCTAssertEqual(runner.run(job), .done)
        XCTAssertTrue(
            FileManager.default.fileExists(
                atPath: spool.layout.doneDirectory(job.id).appendingPathComponent(job.record.teacher).path))
        XCTAssertTrue(jobs(in: "failed").isEmpty)
    }

    /// An attempt that committed a failure (fail/error.json) is finished with that failure; it
    /// used to be replaced by "bad-checkpoint: no such file", or the job was run again.
    func testARetriedJobFinishesAFailureThatWasCommitted() throws {
        let (spool, job, runner, _) = try claimedJob()
        let staging = job.directory.appendingPathComponent("fail")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let failure = SpoolFailure(
            kind: "diverged", what: "the loss became NaN", whereText: "teacher.safetensors",
            whatToDo: "lower the learning rate")
        try encoder.encode(FailureRecord(job: job.id, failure: failure, time: Date())).write(
            to: staging.appendingPathComponent("error.json"))
        try FileManager.default.moveItem(at: job.teacher, to: staging.appendingPathComponent(job.record.teacher))
        XCTAssertEqual(runner.run(job), .failed)
        XCTAssertEqual(try spool.failure(of: job.id)?.failure, failure)
        XCTAssertTrue(
            FileManager.default.fileExists(
                atPath: spool.layout.failedDirectory(job.id).appendingPathComponent(job.record.teacher).path))
    }

    /// A job whose work directory was removed by hand is dropped, not retried forever.
    func testAJobRemovedFromWorkIsDropped() throws {
        let (_, job, runner, log) = try claimedJob()
        try FileManager.default.removeItem(at: job.directory)
        XCTAssertEqual(runner.run(job), .vanished)
        XCTAssertEqual(occurrences(of: " dropped job=", in: log), 1)
    }
}
