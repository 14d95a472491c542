import Checkpoint
import Foundation
import Spool
import TestSupport
import XCTest

@testable import Service

/// The Slurm executor against a real one-node Slurm cluster (munged, slurmctld, slurmd on this
/// machine), which Scripts/test.sh starts with Scripts/slurm_cluster.sh and names in
/// `RRMD_TEST_SLURM`. Each test's spool is the shared directory; `sbatch` is wrapped to count
/// submissions.
final class SlurmExecutorTests: DaemonTestCase {
    /// The cluster's directory (slurm.conf, logs).
    var cluster: String!
    /// Where the counting wrappers of the Slurm commands are.
    var bin: URL!

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard let dir = ProcessInfo.processInfo.environment["RRMD_TEST_SLURM"] else {
            throw XCTSkip("no test cluster: run the tests with Scripts/test.sh, which starts one (RRMD_TEST_SLURM)")
        }
        cluster = dir
        bin = root.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        for command in ["sbatch", "squeue", "sacct", "scancel"] {
            let real = try XCTUnwrap(Self.which(command), "\(command) is not installed")
            var text = "#!/bin/sh\n"
            if command == "sbatch" { text += "echo x >> '\(root.appendingPathComponent("sbatch-calls").path)'\n" }
            text += "exec '\(real)' \"$@\"\n"
            let path = bin.appendingPathComponent(command).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }
    }

    override func tearDownWithError() throws {
        // Nothing a failed test left behind may keep the one-node cluster busy for the next.
        if bin != nil { _ = runQuietly(bin.appendingPathComponent("scancel").path, ["--me"]) }
        try super.tearDownWithError()
    }

    static func which(_ command: String) -> String? {
        for dir in ["/usr/bin", "/usr/local/bin", "/bin"]
        where FileManager.default.isExecutableFile(atPath: "\(dir)/\(command)") {
            return "\(dir)/\(command)"
        }
        return nil
    }

    /// The `[executor]` tables of a Slurm daemon for this test.
    func slurmTables(poll: Double = 0.3) -> String {
        """
        [executor]
        kind = "slurm"
        [executor.slurm]
        cpus_per_task = 2
        shared_directory = "\(root.path)"
        command_directory = "\(bin.path)"
        rrmd_path = "\(Self.binary)"
        poll_seconds = \(poll)
        max_resubmits = 2
        signal_seconds = 5
        """
    }

    var submissions: Int {
        ((try? String(contentsOfFile: root.appendingPathComponent("sbatch-calls").path, encoding: .utf8)) ?? "")
            .split(separator: "\n").count
    }

    /// The Slurm record of `task` in `job`'s work directory, once it exists.
    func record(_ job: String, _ task: String, spool: String = "spool", timeout: TimeInterval = 120) -> [String: Any]? {
        let path = root.appendingPathComponent("\(spool)/work/\(job)/slurm/\(task).json").path
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let data = FileManager.default.contents(atPath: path),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            {
                return object
            }
            usleep(50_000)
        }
        return nil
    }

    func assertSameStudents(
        _ job: String, _ reference: String, _ archs: [String], file: StaticString = #filePath, line: UInt = #line
    ) throws {
        for arch in archs {
            let a = try SafeTensors(
                contentsOfFile: root.appendingPathComponent("spool/done/\(job)/students/\(arch).safetensors.zst").path)
            let b = try SafeTensors(
                contentsOfFile: root.appendingPathComponent(
                    "reference/done/\(reference)/students/\(arch).safetensors.zst"
                ).path)
            XCTAssertEqual(a.names, b.names, file: file, line: line)
            for name in a.names where a[name]?.dtype == .f32 {
                XCTAssertEqual(
                    try a.float32(name).array, try b.float32(name).array, "\(arch) \(name)", file: file, line: line)
            }
        }
    }

    /// Two teachers, three tasks each (the teacher's evaluation and two students), through Slurm:
    /// both jobs are published with reports, and every student equals the one the local
    /// executor makes from the same teacher with the same settings.
    func testTwoTeachersThroughSlurmEqualTheLocalExecutor() throws {
        let archs = ["mlp", "cnn-small"]
        let teachers = [
            try teacherFile(seed: 1, name: "a.safetensors"), try teacherFile(seed: 2, name: "b.safetensors"),
        ]
        let local = try config(name: "local.toml", students: archs, spool: "reference")
        var reference: [String: String] = [:]
        for t in teachers {
            let id = try rrmd(["submit", "--config", local, t]).output.trimmingCharacters(in: .whitespacesAndNewlines)
            reference[t] = id
        }
        XCTAssertEqual(try rrmd(["serve", "--config", local, "--once"]).status, 0)

        let cfg = try config(students: archs, extra: slurmTables())
        var jobsByTeacher: [String: String] = [:]
        for t in teachers {
            let submitted = try rrmd(["submit", "--config", cfg, t])
            XCTAssertEqual(submitted.status, 0, submitted.output)
            jobsByTeacher[t] = submitted.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let served = try rrmd(["serve", "--config", cfg, "--once"], timeout: 600)
        XCTAssertEqual(served.status, 0, served.output)
        XCTAssertEqual(jobs(in: "done"), jobsByTeacher.values.sorted(), served.output)
        XCTAssertEqual(submissions, 6, "one sbatch per task: \(served.output)")
        for t in teachers {
            let job = try XCTUnwrap(jobsByTeacher[t])
            try assertSameStudents(job, try XCTUnwrap(reference[t]), archs)
            let done = root.appendingPathComponent("spool/done/\(job)")
            let summary =
                try JSONSerialization.jsonObject(with: Data(contentsOf: done.appendingPathComponent("report.json")))
                as! [String: Any]
            XCTAssertEqual((summary["students"] as? [Any])?.count, 2)
            XCTAssertNotNil((summary["teacher"] as? [String: Any])?["robustness"])
            for file in ["report.md", "students.svg", "reports/teacher/report.json", "reports/mlp/report.md"] {
                XCTAssertTrue(FileManager.default.fileExists(atPath: done.appendingPathComponent(file).path), file)
            }
        }
        XCTAssertTrue(served.output.contains("submitted as Slurm job"), served.output)
        XCTAssertTrue(served.output.contains("event=report") || served.output.contains(" report "), served.output)
    }

    /// `scancel` of a running student: the daemon submits it again, the new Slurm job resumes from
    /// the saved state, and the job is published.
    func testCancelledStudentIsResubmittedAndResumes() throws {
        let cfg = try config(students: ["cnn-small"], epochs: 40, extra: slurmTables())
        let job = try rrmd(["submit", "--config", cfg, try teacherFile()]).output.trimmingCharacters(
            in: .whitespacesAndNewlines)
        let daemon = try start(["serve", "--config", cfg, "--once"])
        defer { if daemon.process.isRunning { daemon.process.terminate() } }
        let work = root.appendingPathComponent("spool/work/\(job)")
        let state = work.appendingPathComponent("state-cnn-small.safetensors.zst").path
        let deadline = Date().addingTimeInterval(300)
        while !FileManager.default.fileExists(atPath: state) && Date() < deadline && daemon.process.isRunning {
            usleep(20_000)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: state), "no training state appeared")
        let first = try XCTUnwrap(record(job, "cnn-small")?["slurm_job"] as? String)
        XCTAssertEqual(runQuietly(bin.appendingPathComponent("scancel").path, [first]), 0)

        // The second submission resumes from the state the first one saved.
        var resumed = false
        while !resumed && Date() < deadline && daemon.process.isRunning {
            if let r = record(job, "cnn-small", timeout: 1), r["submissions"] as? Int == 2,
                let id = r["slurm_job"] as? String,
                let text = try? String(
                    contentsOf: work.appendingPathComponent("slurm/cnn-small-\(id).out"), encoding: .utf8)
            {
                resumed = text.contains("resuming from")
            }
            usleep(50_000)
        }
        XCTAssertTrue(resumed, "the resubmitted student did not resume from its state")
        while daemon.process.isRunning && Date() < deadline.addingTimeInterval(300) { usleep(50_000) }
        daemon.process.waitUntilExit()
        let output = String(decoding: (try? Data(contentsOf: daemon.log)) ?? Data(), as: UTF8.self)
        XCTAssertEqual(daemon.process.terminationStatus, 0, output)
        XCTAssertEqual(jobs(in: "done"), [job], output)
        XCTAssertTrue(output.contains("Slurm job \(first) ended CANCELLED without a result"), output)
        XCTAssertEqual(submissions, 3, "teacher, student, the student again")
    }

    /// The daemon SIGKILLed while its Slurm jobs run: the next start follows them by the ids it
    /// recorded instead of submitting again.
    func testKilledDaemonReattachesWithoutSubmittingAgain() throws {
        let cfg = try config(students: ["cnn-small"], epochs: 30, extra: slurmTables())
        let job = try rrmd(["submit", "--config", cfg, try teacherFile()]).output.trimmingCharacters(
            in: .whitespacesAndNewlines)
        let first = try start(["serve", "--config", cfg])
        let id = try XCTUnwrap(record(job, "cnn-small")?["slurm_job"] as? String, "the student was never submitted")
        // `rrmd status` shows the job's Slurm jobs with their ids and states.
        var status = ""
        let deadline = Date().addingTimeInterval(30)
        while !status.contains("slurm job \(id): cnn-small") && Date() < deadline {
            status = try rrmd(["status", "--config", cfg]).output
            usleep(200_000)
        }
        XCTAssertTrue(status.contains("slurm job \(id): cnn-small"), status)
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        XCTAssertEqual(submissions, 2)
        let second = try rrmd(["serve", "--config", cfg, "--once"], timeout: 600)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertEqual(jobs(in: "done"), [job], second.output)
        XCTAssertEqual(submissions, 2, "no task was submitted twice: \(second.output)")
        XCTAssertFalse(second.output.contains("submitted as Slurm job"), second.output)
    }

    /// The controller stopped while a job runs: the daemon warns and waits; once it is back the
    /// job completes, with nothing failed or submitted twice.
    func testControllerOutageIsWaitedOut() throws {
        let cfg = try config(students: ["cnn-small"], epochs: 30, extra: slurmTables())
        let job = try rrmd(["submit", "--config", cfg, try teacherFile()]).output.trimmingCharacters(
            in: .whitespacesAndNewlines)
        let daemon = try start(["serve", "--config", cfg, "--once"])
        defer { if daemon.process.isRunning { daemon.process.terminate() } }
        XCTAssertNotNil(record(job, "cnn-small"), "the student was never submitted")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Scripts/slurm_cluster.sh").path
        XCTAssertEqual(runQuietly("/bin/bash", [script, "stop-controller", cluster]), 0)
        // Slurm's commands themselves retry for about 9 s before they report the controller unreachable.
        sleep(15)
        XCTAssertEqual(runQuietly("/bin/bash", [script, "start-controller", cluster]), 0)
        let deadline = Date().addingTimeInterval(600)
        while daemon.process.isRunning && Date() < deadline { usleep(50_000) }
        daemon.process.waitUntilExit()
        let output = String(decoding: (try? Data(contentsOf: daemon.log)) ?? Data(), as: UTF8.self)
        XCTAssertEqual(daemon.process.terminationStatus, 0, output)
        XCTAssertEqual(jobs(in: "done"), [job], output)
        XCTAssertTrue(output.contains("cannot read the Slurm queue"), output)
        XCTAssertTrue(output.contains("answers again"), output)
        XCTAssertEqual(submissions, 2, output)
    }
}
