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

/// The daemon as operators run it: a real `rrmd serve` process on a temporary spool, with the
/// digits fixture as its dataset and tiny students so each job takes a second or two. Start,
/// publish, systemd notifications, stops, kills, reloads and status.
final class DaemonProcessTests: DaemonTestCase {
    /// Submit, serve --once, and find loadable students and valid reports in done/<job>.
    func testSubmitServeAndPublish() throws {
        let cfg = try config(students: ["mlp", "cnn-small"])
        let submitted = try rrmd(["submit", "--config", cfg, try teacherFile()])
        XCTAssertEqual(submitted.status, 0, submitted.output)
        let job = submitted.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let served = try rrmd(["serve", "--config", cfg, "--once"])
        XCTAssertEqual(served.status, 0, served.output)
        XCTAssertEqual(jobs(in: "done"), [job], served.output)
        let done = root.appendingPathComponent("spool/done/\(job)")
        for arch in ["mlp", "cnn-small"] {
            let student = try ModelLoader.load(
                path: done.appendingPathComponent("students/\(arch).safetensors.zst").path)
            XCTAssertEqual(student.metadata.trainedBy, "rrm")
            XCTAssertEqual(student.metadata.threatModel, "linf:0.1")
            XCTAssertNotNil(student.metadata.teacherSHA256)
            let report =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: done.appendingPathComponent("reports/\(arch)/report.json")))
                as! [String: Any]
            XCTAssertEqual(report["schema"] as? String, "rrmd.report/1")
        }
        let summary =
            try JSONSerialization.jsonObject(with: Data(contentsOf: done.appendingPathComponent("report.json")))
            as! [String: Any]
        XCTAssertEqual((summary["students"] as? [Any])?.count, 2)
        // The teacher is attacked once under the students' protocol; each student's robust
        // accuracy is stated as a share of the teacher's.
        let teacher = try XCTUnwrap((summary["teacher"] as? [String: Any])?["robustness"] as? [String: Any])
        let teacherRobust = try XCTUnwrap(teacher["robust_accuracy"] as? Double)
        XCTAssertLessThanOrEqual(teacherRobust, try XCTUnwrap(teacher["clean_accuracy"] as? Double))
        XCTAssertEqual(teacher["report"] as? String, "reports/teacher/report.md")
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: done.appendingPathComponent("reports/teacher/report.json").path))
        for case let student as [String: Any] in summary["students"] as! [Any] {
            let robust = try XCTUnwrap(student["robust_accuracy"] as? Double)
            if teacherRobust > 0 {
                XCTAssertEqual(try XCTUnwrap(student["retained"] as? Double), robust / teacherRobust, accuracy: 1e-9)
            } else {
                XCTAssertNil(student["retained"])
            }
        }
        let markdown = try String(contentsOf: done.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(markdown.contains("| teacher cnn-small |"), markdown)
        XCTAssertTrue(markdown.contains("kept of the teacher's robustness"), markdown)
        XCTAssertTrue(served.output.contains(" teacher job=\(job)"), served.output)
        XCTAssertTrue(served.output.contains("teacher_robust_acc="), served.output)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: done.appendingPathComponent(JobRunner.teacherResultName).path),
            "the work directory's teacher result is not part of what is published")
        for file in ["report.md", "students.svg", "job.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: done.appendingPathComponent(file).path), file)
        }
        XCTAssertTrue(jobs(in: "work").isEmpty)
        XCTAssertTrue(served.output.contains("report"), served.output)
    }

    func testNotifiesSystemd() throws {
        let cfg = try config()
        _ = try rrmd(["submit", "--config", cfg, try teacherFile()])
        let (fd, socketPath) = try notifySocket()
        defer { close(fd) }
        let served = try start(["serve", "--config", cfg, "--once"], environment: ["NOTIFY_SOCKET": socketPath])
        let messages = notifications(fd, from: served.process)
        XCTAssertEqual(served.process.terminationStatus, 0)
        XCTAssertTrue(messages.contains { $0.contains("READY=1") }, "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("STATUS=") && $0.contains("training") }, "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("STOPPING=1") }, "\(messages)")
        let ready = messages.firstIndex { $0.contains("READY=1") }!
        let stopping = messages.lastIndex { $0.contains("STOPPING=1") }!
        XCTAssertLessThan(ready, stopping)
        // The job being run is not counted as queued: it was the only one.
        let working = messages.filter { $0.contains("STATUS=working") }
        XCTAssertFalse(working.isEmpty, "\(messages)")
        XCTAssertTrue(working.allSatisfy { $0.contains("; 0 queued") }, "\(working)")
    }

    /// SIGTERM while the daemon is still starting (recovery is hashing a 3 GiB teacher whose claim
    /// a crash interrupted): it stops within seconds, never says READY=1, says STOPPING=1, exits
    /// 0, and leaves the job as it found it for the next start.
    func testStopDuringStartUpIsClean() throws {
        let cfg = try config()
        _ = try rrmd(["serve", "--config", cfg, "--once"])  // creates the spool
        let id = "20261206-090000-0badc0de"
        let work = root.appendingPathComponent("spool/work/\(id)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        // Holes only: no disk used, but finishing the claim means reading and hashing all of it.
        let teacher = work.appendingPathComponent("teacher.safetensors").path
        FileManager.default.createFile(atPath: teacher, contents: nil)
        XCTAssertEqual(truncate(teacher, 3 << 30), 0)
        let (fd, socketPath) = try notifySocket()
        defer { close(fd) }
        let served = try start(["serve", "--config", cfg], environment: ["NOTIFY_SOCKET": socketPath])
        usleep(300_000)
        let stopAsked = Date()
        kill(served.process.processIdentifier, SIGTERM)
        let messages = notifications(fd, from: served.process)
        let log = String(decoding: (try? Data(contentsOf: served.log)) ?? Data(), as: UTF8.self)
        XCTAssertLessThan(Date().timeIntervalSince(stopAsked), 20, "the stop waited for the hash: \(log)")
        XCTAssertEqual(served.process.terminationReason, .exit, log)
        XCTAssertEqual(served.process.terminationStatus, 0, log)
        XCTAssertFalse(messages.contains { $0.contains("READY=1") }, "READY=1 after a stop was requested: \(messages)")
        XCTAssertTrue(messages.contains { $0.contains("STOPPING=1") }, "\(messages)")
        XCTAssertEqual(jobs(in: "work"), [id], "the job stays for the next start")
        XCTAssertFalse(FileManager.default.fileExists(atPath: work.appendingPathComponent("job.json").path))
    }

    /// kill -9 in the middle of training, then a restart: the job completes, and its student is
    /// the one an uninterrupted daemon makes, bit for bit.
    /// A teacher trained by `rrmd train` on an image folder (PNG and JPEG files of odd sizes),
    /// submitted to a daemon that knows the folder as `[datasets.pets] format = "folder"`: the
    /// job is published, its student trained and attacked on the same decoded images.
    func testTeacherOfAnImageFolderDataset() throws {
        let data = root.appendingPathComponent("pets").path
        try ImageFiles.makeFolderDataset(
            root: data, classes: ["cat", "dog", "fox", "owl"], perClass: (train: 9, test: 5))
        let teacher = root.appendingPathComponent("pets-teacher.safetensors").path
        let trained = try rrmd([
            "train", "--arch", "cnn-small", "--width", "0.5", "--dataset", "pets", "--data-dir", data,
            "--image-size", "8", "--epochs", "2", "--batch-size", "12", "--threads", "2", "--out", teacher,
        ])
        XCTAssertEqual(trained.status, 0, trained.output)
        let cfg = try config(
            students: ["mlp"], batchSize: 12, extra: "[datasets.pets]\nformat = \"folder\"\npath = \"\(data)\"")
        let job = try rrmd(["submit", "--config", cfg, teacher]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let served = try rrmd(["serve", "--config", cfg, "--once"])
        XCTAssertEqual(served.status, 0, served.output)
        let failure =
            (try? String(
                contentsOfFile: root.appendingPathComponent("spool/failed/\(job)/error.json").path, encoding: .utf8))
            ?? ""
        XCTAssertEqual(jobs(in: "done"), [job], served.output + failure)
        let done = root.appendingPathComponent("spool/done/\(job)")
        let student = try ModelLoader.load(path: done.appendingPathComponent("students/mlp.safetensors.zst").path)
        XCTAssertEqual(student.metadata.dataset, "pets")
        XCTAssertEqual(student.network.config.inputShape, [3, 8, 8])
        XCTAssertEqual(student.network.config.numClasses, 4)
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: data + "/.rrmd-cache"), "the decoded images were cached")
    }

    func testKillNineResumesToTheSameStudent() throws {
        let teacher = try teacherFile()
        let reference = try config(name: "reference.toml", students: ["cnn-small"], epochs: 4, spool: "reference")
        _ = try rrmd(["submit", "--config", reference, teacher])
        XCTAssertEqual(try rrmd(["serve", "--config", reference, "--once"]).status, 0)

        let cfg = try config(students: ["cnn-small"], epochs: 4)
        let job = try rrmd(["submit", "--config", cfg, teacher]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let first = try start(["serve", "--config", cfg])
        let state = root.appendingPathComponent("spool/work/\(job)/state-cnn-small.safetensors.zst").path
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: state) && Date() < deadline && first.process.isRunning {
            usleep(5_000)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: state), "no training state appeared")
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        XCTAssertTrue(jobs(in: "done").isEmpty, "the job finished before the kill; the test needs a longer run")

        let second = try rrmd(["serve", "--config", cfg, "--once"])
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertTrue(second.output.contains("resume"), second.output)
        XCTAssertTrue(second.output.contains("epoch 4/4, test accuracy"), second.output)
        XCTAssertTrue(second.output.contains("probe under attack"), "every epoch is probed: \(second.output)")
        XCTAssertEqual(jobs(in: "done"), [job])
        let refJob = jobs(in: "done", spool: "reference").first!
        let a = try SafeTensors(
            contentsOfFile: root.appendingPathComponent("spool/done/\(job)/students/cnn-small.safetensors.zst").path)
        let b = try SafeTensors(
            contentsOfFile: root.appendingPathComponent("reference/done/\(refJob)/students/cnn-small.safetensors.zst")
                .path)
        XCTAssertEqual(a.names, b.names)
        for name in a.names where a[name]?.dtype == .f32 {
            XCTAssertEqual(try a.float32(name).array, try b.float32(name).array, name)
        }
    }

    /// SIGTERM while training: the daemon saves the job's state and exits promptly; the next
    /// start finishes the job.
    func testSigtermStopsAtAStepBoundaryAndResumes() throws {
        let cfg = try config(students: ["cnn-small"], epochs: 30)
        let job = try rrmd(["submit", "--config", cfg, try teacherFile()]).output.trimmingCharacters(
            in: .whitespacesAndNewlines)
        let first = try start(["serve", "--config", cfg])
        let status = root.appendingPathComponent("spool/status.json").path
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, first.process.isRunning,
            !((try? String(contentsOfFile: status, encoding: .utf8))?.contains("\"training\"") ?? false)
        { usleep(5_000) }
        let sent = Date()
        kill(first.process.processIdentifier, SIGTERM)
        first.process.waitUntilExit()
        XCTAssertLessThan(Date().timeIntervalSince(sent), 10, "SIGTERM took too long")
        XCTAssertEqual(first.process.terminationStatus, 0)
        let log = String(decoding: try Data(contentsOf: first.log), as: UTF8.self)
        XCTAssertTrue(log.contains("stop requested"), log)
        XCTAssertTrue(
            FileManager.default.fileExists(
                atPath: root.appendingPathComponent("spool/work/\(job)/state-cnn-small.safetensors.zst").path), log)
        let second = try rrmd(["serve", "--config", cfg, "--once"], timeout: 300)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertTrue(second.output.contains("resume"), second.output)
        XCTAssertTrue(second.output.contains("epoch 30/30, test accuracy"), second.output)
        XCTAssertTrue(second.output.contains("probe under attack"), "every epoch is probed: \(second.output)")
        XCTAssertEqual(jobs(in: "done"), [job])
    }

    /// The same teacher twice: one job is done, the other is reported as its duplicate, not redone.
    func testIdenticalResubmissionIsReportedNotRedone() throws {
        let cfg = try config()
        let teacher = try teacherFile()
        let first = try rrmd(["submit", "--config", cfg, teacher]).output.trimmingCharacters(
            in: .whitespacesAndNewlines)
        XCTAssertEqual(try rrmd(["serve", "--config", cfg, "--once"]).status, 0)
        let second = try rrmd(["submit", "--config", cfg, teacher]).output.trimmingCharacters(
            in: .whitespacesAndNewlines)
        let served = try rrmd(["serve", "--config", cfg, "--once"])
        XCTAssertEqual(jobs(in: "done"), [first])
        XCTAssertEqual(jobs(in: "failed"), [second])
        let error =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: root.appendingPathComponent("spool/failed/\(second)/error.json")))
            as! [String: Any]
        XCTAssertEqual(error["kind"] as? String, "duplicate")
        XCTAssertTrue((error["what"] as? String ?? "").contains(first))
        XCTAssertFalse(served.output.contains(" training "), "the duplicate was trained again: \(served.output)")
    }

    /// `rrmd status` run by an operator reports a daemon of another user as running (kill(pid, 0)
    /// answers EPERM for it); it used to say "not running".
    func testStatusSeesADaemonOfAnotherUserAsRunning() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            throw XCTSkip("needs root and setpriv to run `rrmd status` as another user")
        }
        let cfg = try config()
        let spool = Spool(root: root.appendingPathComponent("spool"))
        for dir in [
            spool.layout.root, spool.layout.tmp, spool.layout.incoming, spool.layout.work, spool.layout.done,
            spool.layout.failed,
        ] {
            try FileManager.default.createDirectory(
                at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        }
        // This process (root) plays the daemon.
        try spool.writeStatus(SpoolStatus(state: .idle, pid: getpid()))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", Self.binary, "status", "--config", cfg]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, output)
        XCTAssertTrue(output.contains("daemon: idle (pid \(getpid()), updated"), output)
        XCTAssertFalse(output.contains("not running"), output)
    }
}
