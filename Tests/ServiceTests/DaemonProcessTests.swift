import Checkpoint
import Data
import Evaluation
import FileSystem
import Foundation
import ModelIO
import Models
@testable import Service
import Spool
import TestSupport
import Training
import XCTest

/// The daemon as operators run it: a real `rrmd serve` process on a temporary spool, with the
/// digits fixture as its dataset and tiny students so each job takes a second or two.
final class DaemonProcessTests: XCTestCase {
    /// The `rrmd` executable built beside the test bundle.
    private static let binary: String = {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("rrmd").path
    }()

    private static let fixtures = TestFixtures.dataDirectory

    /// A small teacher trained once: cnn-small ×0.5 on digits, one epoch.
    private static let teacher: (network: Network, data: (train: Dataset, test: Dataset)) = {
        let data = try! DatasetCatalog.load("digits", directory: fixtures)
        let stats = data.train.channelStatistics()
        let net = try! ModelRegistry.make("cnn-small", config: ModelConfig(channels: 1, height: 8, width: 8, numClasses: 10, widthMultiplier: 0.5,
                                                                         mean: stats.mean, std: stats.std), seed: 1)
        _ = Trainer(model: net, settings: TrainingSettings(epochs: 1, batchSize: 50, learningRate: 0.05, cropPadding: 0, seed: 1))
            .run(train: data.train, test: data.test)
        return (net, data)
    }()

    private var root: URL!

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw XCTSkip("the rrmd executable is not at \(Self.binary); build it with `swift build --build-tests`")
        }
        root = FileManager.default.temporaryDirectory.appendingPathComponent("rrmd-daemon-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: root)
    }

    /// Writes a configuration for a spool under the test's directory and returns its path.
    private func config(name: String = "rrmd.toml", students: [String] = ["mlp"], epochs: Int = 1, spool: String = "spool",
                        service: String = "rescan_seconds = 2", samples: Int = 40, iterations: Int = 3,
                        width: Double = 0.5, batchSize: Int = 50) throws -> String {
        let text = """
            spool = "\(root.appendingPathComponent(spool).path)"
            threads = 2
            [datasets.digits]
            format = "idx"
            path = "\(Self.fixtures)"
            [students]
            architectures = [\(students.map { "\"\($0)\"" }.joined(separator: ", "))]
            width = \(width)
            [rrm]
            epochs = \(epochs)
            batch_size = \(batchSize)
            learning_rate = 0.05
            [evaluation]
            attacks = ["apgd-ce", "apgd-t"]
            samples = \(samples)
            iterations = \(iterations)
            target_classes = 2
            sweep_samples = 20
            check_samples = 20
            [service]
            \(service)
            """
        let path = root.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Saves the teacher (with `seed` in its metadata, which changes its bytes) and returns the path.
    private func teacherFile(seed: UInt64 = 1, name: String = "teacher.safetensors") throws -> String {
        let path = root.appendingPathComponent(name).path
        let meta = ModelMetadata(model: Self.teacher.network, dataset: "digits", threatModel: "linf:0.1", trainedBy: "natural", seed: seed)
        try SafeTensors(Self.teacher.network.stateTensors(), metadata: meta.dictionary).write(toFile: path)
        return path
    }

    /// Runs rrmd with `arguments`; returns its exit status and output.
    @discardableResult
    private func rrmd(_ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 120) throws -> (status: Int32, output: String) {
        let p = try start(arguments, environment: environment)
        let deadline = Date().addingTimeInterval(timeout)
        while p.process.isRunning && Date() < deadline { usleep(20_000) }
        if p.process.isRunning { p.process.terminate(); XCTFail("rrmd \(arguments) did not finish in \(timeout) s") }
        p.process.waitUntilExit()
        return (p.process.terminationStatus, String(decoding: (try? Data(contentsOf: p.log)) ?? Data(), as: UTF8.self))
    }

    /// Starts rrmd (or `executable`) with `arguments`, output into a log file.
    private func start(_ arguments: [String], environment: [String: String] = [:], executable: String? = nil) throws -> (process: Process, log: URL) {
        let log = root.appendingPathComponent("log-\(UUID().uuidString).txt")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable ?? Self.binary)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "NOTIFY_SOCKET")
        env.removeValue(forKey: "JOURNAL_STREAM")
        env.removeValue(forKey: "INVOCATION_ID")
        for (k, v) in environment { env[k] = v }
        p.environment = env
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        return (p, log)
    }

    private func jobs(in state: String, spool: String = "spool") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("\(spool)/\(state)").path)) ?? [])
            .filter { !$0.hasPrefix(".") }.sorted()
    }

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
            let student = try ModelLoader.load(path: done.appendingPathComponent("students/\(arch).safetensors.zst").path)
            XCTAssertEqual(student.metadata.trainedBy, "rrm")
            XCTAssertEqual(student.metadata.threatModel, "linf:0.1")
            XCTAssertNotNil(student.metadata.teacherSHA256)
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: done.appendingPathComponent("reports/\(arch)/report.json"))) as! [String: Any]
            XCTAssertEqual(report["schema"] as? String, "rrmd.report/1")
        }
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: done.appendingPathComponent("report.json"))) as! [String: Any]
        XCTAssertEqual((summary["students"] as? [Any])?.count, 2)
        // The teacher is attacked once under the students' protocol; each student's robust
        // accuracy is stated as a share of the teacher's.
        let teacher = try XCTUnwrap((summary["teacher"] as? [String: Any])?["robustness"] as? [String: Any])
        let teacherRobust = try XCTUnwrap(teacher["robust_accuracy"] as? Double)
        XCTAssertLessThanOrEqual(teacherRobust, try XCTUnwrap(teacher["clean_accuracy"] as? Double))
        XCTAssertEqual(teacher["report"] as? String, "reports/teacher/report.md")
        XCTAssertTrue(FileManager.default.fileExists(atPath: done.appendingPathComponent("reports/teacher/report.json").path))
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
        XCTAssertFalse(FileManager.default.fileExists(atPath: done.appendingPathComponent(JobRunner.teacherResultName).path),
                       "the work directory's teacher result is not part of what is published")
        for file in ["report.md", "students.svg", "job.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: done.appendingPathComponent(file).path), file)
        }
        XCTAssertTrue(jobs(in: "work").isEmpty)
        XCTAssertTrue(served.output.contains("report"), served.output)
    }

    /// A listener on NOTIFY_SOCKET hears READY=1, STATUS= lines and STOPPING=1.
    /// A datagram socket standing in for systemd's notify socket: its descriptor and path.
    private func notifySocket() throws -> (fd: Int32, path: String) {
        let socketPath = root.appendingPathComponent("notify.sock").path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(socketPath.utf8)
            for (i, b) in bytes.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0, "bind \(socketPath)")
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return (fd, socketPath)
    }

    /// Every notify message `process` sends to `fd` until it exits (or two minutes pass).
    private func notifications(_ fd: Int32, from process: Process) -> [String] {
        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 { messages.append(String(decoding: buffer[0..<n], as: UTF8.self)) }
            else if !process.isRunning { break }
        }
        process.waitUntilExit()
        return messages
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
        let ready = messages.firstIndex { $0.contains("READY=1") }!, stopping = messages.lastIndex { $0.contains("STOPPING=1") }!
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
        while !FileManager.default.fileExists(atPath: state) && Date() < deadline && first.process.isRunning { usleep(5_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: state), "no training state appeared")
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        XCTAssertTrue(jobs(in: "done").isEmpty, "the job finished before the kill; the test needs a longer run")

        let second = try rrmd(["serve", "--config", cfg, "--once"])
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertTrue(second.output.contains("resume"), second.output)
        XCTAssertEqual(jobs(in: "done"), [job])
        let refJob = jobs(in: "done", spool: "reference").first!
        let a = try SafeTensors(contentsOfFile: root.appendingPathComponent("spool/done/\(job)/students/cnn-small.safetensors.zst").path)
        let b = try SafeTensors(contentsOfFile: root.appendingPathComponent("reference/done/\(refJob)/students/cnn-small.safetensors.zst").path)
        XCTAssertEqual(a.names, b.names)
        for name in a.names where a[name]?.dtype == .f32 {
            XCTAssertEqual(try a.float32(name).array, try b.float32(name).array, name)
        }
    }

    /// SIGTERM while training: the daemon saves the job's state and exits promptly; the next
    /// start finishes the job.
    func testSigtermStopsAtAStepBoundaryAndResumes() throws {
        let cfg = try config(students: ["cnn-small"], epochs: 30)
        let job = try rrmd(["submit", "--config", cfg, try teacherFile()]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let first = try start(["serve", "--config", cfg])
        let status = root.appendingPathComponent("spool/status.json").path
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, first.process.isRunning,
              !((try? String(contentsOfFile: status, encoding: .utf8))?.contains("\"training\"") ?? false) { usleep(5_000) }
        let sent = Date()
        kill(first.process.processIdentifier, SIGTERM)
        first.process.waitUntilExit()
        XCTAssertLessThan(Date().timeIntervalSince(sent), 10, "SIGTERM took too long")
        XCTAssertEqual(first.process.terminationStatus, 0)
        let log = String(decoding: try Data(contentsOf: first.log), as: UTF8.self)
        XCTAssertTrue(log.contains("stop requested"), log)
        XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("spool/work/\(job)/state-cnn-small.safetensors.zst").path), log)
        let second = try rrmd(["serve", "--config", cfg, "--once"], timeout: 300)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertTrue(second.output.contains("resume"), second.output)
        XCTAssertEqual(jobs(in: "done"), [job])
    }

    /// SIGHUP with a broken configuration keeps the old one and the daemon keeps serving.
    func testReloadRejectsABadConfiguration() throws {
        let cfg = try config()
        let served = try start(["serve", "--config", cfg])
        defer { served.process.terminate(); served.process.waitUntilExit() }
        usleep(500_000)
        try "spool = 42\n".write(toFile: cfg, atomically: true, encoding: .utf8)
        kill(served.process.processIdentifier, SIGHUP)
        usleep(1_500_000)
        XCTAssertTrue(served.process.isRunning)
        let log = String(decoding: try Data(contentsOf: served.log), as: UTF8.self)
        XCTAssertTrue(log.contains("new configuration rejected, keeping the old one"), log)
        // Still serving: a teacher dropped now is processed.
        let job = try rrmd(["submit", "--config", try config(name: "again.toml"), try teacherFile()]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let deadline = Date().addingTimeInterval(60)
        while jobs(in: "done").isEmpty && Date() < deadline { usleep(50_000) }
        XCTAssertEqual(jobs(in: "done"), [job])
    }

    /// The same teacher twice: one job is done, the other is reported as its duplicate, not redone.
    func testIdenticalResubmissionIsReportedNotRedone() throws {
        let cfg = try config()
        let teacher = try teacherFile()
        let first = try rrmd(["submit", "--config", cfg, teacher]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try rrmd(["serve", "--config", cfg, "--once"]).status, 0)
        let second = try rrmd(["submit", "--config", cfg, teacher]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let served = try rrmd(["serve", "--config", cfg, "--once"])
        XCTAssertEqual(jobs(in: "done"), [first])
        XCTAssertEqual(jobs(in: "failed"), [second])
        let error = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("spool/failed/\(second)/error.json"))) as! [String: Any]
        XCTAssertEqual(error["kind"] as? String, "duplicate")
        XCTAssertTrue((error["what"] as? String ?? "").contains(first))
        XCTAssertFalse(served.output.contains(" training "), "the duplicate was trained again: \(served.output)")
    }

    /// A file above max_teacher_bytes is refused without being read, and the daemon goes on.
    func testOversizedTeacherIsRefusedUnread() throws {
        let cfg = try config(service: "rescan_seconds = 2\nmax_teacher_bytes = 1048576")
        let big = root.appendingPathComponent("big.safetensors")
        try Data(repeating: 7, count: 1_500_000).write(to: big)
        let job = try rrmd(["submit", "--config", cfg, big.path]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let served = try rrmd(["serve", "--config", cfg, "--once"])
        XCTAssertEqual(served.status, 0, served.output)
        XCTAssertEqual(jobs(in: "failed"), [job], served.output)
        let error = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("spool/failed/\(job)/error.json"))) as! [String: Any]
        XCTAssertEqual(error["kind"] as? String, "too-large")
        XCTAssertFalse(served.output.contains(" claimed "), "an oversized file must not be claimed (hashed): \(served.output)")
    }

    /// A job the daemon keeps restarting during is failed as the likely cause, not retried forever.
    func testAJobThatKeepsKillingTheDaemonIsFailed() throws {
        let cfg = try config(students: ["cnn-small"], epochs: 30)
        let job = try rrmd(["submit", "--config", cfg, try teacherFile()]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let first = try start(["serve", "--config", cfg])
        let record = root.appendingPathComponent("spool/work/\(job)/job.json")
        // Killed while running the job (its run marker is there), so the death counts against it.
        let marker = root.appendingPathComponent("spool/work/\(job)/.running")
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: marker.path) && Date() < deadline { usleep(5_000) }
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        // As if it had been killed ten times already.
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: record)) as! [String: Any]
        json["attempts"] = 10
        try JSONSerialization.data(withJSONObject: json).write(to: record)
        let served = try rrmd(["serve", "--config", cfg, "--once"])
        XCTAssertEqual(served.status, 0, served.output)
        XCTAssertEqual(jobs(in: "failed"), [job], served.output)
        let error = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("spool/failed/\(job)/error.json"))) as! [String: Any]
        XCTAssertEqual(error["kind"] as? String, "crashed")
    }

    /// A restart storm (issue 14): good teachers and hostile files queued at once, the daemon
    /// SIGKILLed a dozen times at seeded random moments, then left to drain. Every good teacher
    /// ends in done/ exactly once, every hostile file in failed/ for its own reason, none as
    /// `crashed`, and nothing is left behind: a restart counts against the job being run only.
    func testRestartStormLosesNothingAndBlamesNoWaitingJob() throws {
        let cfg = try config()
        let spool = root.appendingPathComponent("spool")
        var good: [String] = []
        for i in 0..<10 {
            let submitted = try rrmd(["submit", "--config", cfg, try teacherFile(seed: UInt64(200 + i), name: "good\(i).safetensors")])
            XCTAssertEqual(submitted.status, 0, submitted.output)
            good.append(submitted.output.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        // Hostile inputs dropped in by hand, each with the kind of failure it must end with.
        let incoming = spool.appendingPathComponent("incoming")
        var hostile: [String: String] = [:]  // original name -> expected kind
        try Data().write(to: incoming.appendingPathComponent("empty.safetensors")); hostile["empty.safetensors"] = "empty"
        try Data(repeating: 0x7b, count: 4096).write(to: incoming.appendingPathComponent("garbage.safetensors"))
        hostile["garbage.safetensors"] = "bad-checkpoint"
        let valid = try Data(contentsOf: URL(fileURLWithPath: try teacherFile(seed: 999, name: "whole.safetensors")))
        try valid.prefix(valid.count / 2).write(to: incoming.appendingPathComponent("truncated.safetensors"))
        hostile["truncated.safetensors"] = "bad-checkpoint"
        XCTAssertEqual(symlink("/etc/passwd", incoming.appendingPathComponent("link.safetensors").path), 0)
        hostile["incoming/link.safetensors"] = SpoolFailure.specialFileKind  // refused where it lies, unopened

        var seed: UInt64 = 14  // a fixed linear congruential sequence: the same moments every run
        for _ in 0..<12 {
            let p = try start(["serve", "--config", cfg])
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            // 0.3 to 2.5 s: sometimes before recovery ends, sometimes mid-job or mid-claim.
            usleep(UInt32(300_000 + Int(seed >> 33) % 2_200_000))
            kill(p.process.processIdentifier, SIGKILL)
            p.process.waitUntilExit()
        }
        let drained = try rrmd(["serve", "--config", cfg, "--once"], timeout: 300)
        XCTAssertEqual(drained.status, 0, drained.output)

        XCTAssertEqual(jobs(in: "incoming"), [], drained.output)
        XCTAssertEqual(jobs(in: "work"), [], drained.output)
        var doneSHA: [String] = []
        for job in jobs(in: "done") {
            let record = try JSONSerialization.jsonObject(with: Data(contentsOf: spool.appendingPathComponent("done/\(job)/job.json"))) as! [String: Any]
            doneSHA.append(record["sha256"] as! String)
        }
        XCTAssertEqual(Set(jobs(in: "done")), Set(good), "every good teacher done, under its own id")
        XCTAssertEqual(doneSHA.count, Set(doneSHA).count, "nothing done twice")
        var failedKinds: [String: String] = [:]
        for job in jobs(in: "failed") {
            let dir = spool.appendingPathComponent("failed/\(job)")
            let error = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("error.json"))) as! [String: Any]
            // error.json names the input as it arrived ("where") and why it failed ("kind").
            failedKinds[error["where"] as? String ?? job] = error["kind"] as? String ?? "?"
        }
        XCTAssertFalse(failedKinds.values.contains("crashed"), "\(failedKinds)")
        XCTAssertEqual(failedKinds.count, hostile.count, "\(failedKinds)")
        for (name, kind) in hostile { XCTAssertEqual(failedKinds[name], kind, "\(name): \(failedKinds)") }
    }

    /// Twenty submissions at once: each is processed exactly once.
    func testTwentySubmissionsAtOnce() throws {
        let cfg = try config()
        let teachers = try (0..<20).map { try teacherFile(seed: UInt64(100 + $0), name: "t\($0).safetensors") }
        let ids = LockedIDs()
        DispatchQueue.concurrentPerform(iterations: teachers.count) { i in
            if let r = try? rrmd(["submit", "--config", cfg, teachers[i]]), r.status == 0 {
                ids.add(r.output.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        XCTAssertEqual(Set(ids.all).count, 20)
        let served = try rrmd(["serve", "--config", cfg, "--once"], timeout: 300)
        XCTAssertEqual(served.status, 0, served.output)
        XCTAssertEqual(Set(jobs(in: "done")), Set(ids.all))
        XCTAssertTrue(jobs(in: "failed").isEmpty && jobs(in: "work").isEmpty && jobs(in: "incoming").isEmpty)
        XCTAssertEqual(served.output.components(separatedBy: " done job=").count - 1, 20, served.output)
    }

    /// Bad inputs end in failed/ with a reason, and the daemon goes on to serve a good one.
    func testBadInputsFailAndTheDaemonKeepsServing() throws {
        let cfg = try config()
        let good = try teacherFile()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let spool = root.appendingPathComponent("spool")
        _ = try rrmd(["status", "--config", cfg])
        try FileManager.default.createDirectory(at: spool.appendingPathComponent("incoming"), withIntermediateDirectories: true)
        func drop(_ name: String, _ data: Data) throws { try data.write(to: spool.appendingPathComponent("incoming/\(name)")) }
        try drop("truncated.safetensors", bytes.prefix(bytes.count / 2))
        var flipped = bytes
        flipped[12] ^= 0x40  // inside the JSON header
        try drop("bitflip.safetensors", flipped)
        try drop("empty.safetensors", Data())
        try drop("notes.safetensors", Data("not a checkpoint".utf8))
        // A decompression bomb: a tiny zstd frame that claims to hold a terabyte.
        try drop("bomb.safetensors.zst", Data(zeroBombFrame(blocks: 8, contentSize: 1 << 40)))
        // The right format and metadata but an architecture the registry lacks.
        var meta = ModelMetadata(model: Self.teacher.network, dataset: "digits", trainedBy: "natural", seed: 1).dictionary
        meta["rrm.arch"] = "transformer"
        try drop("wrongarch.safetensors", Data(try SafeTensors(Self.teacher.network.stateTensors(), metadata: meta).serialized()))
        XCTAssertEqual(symlink("/etc/passwd", spool.appendingPathComponent("incoming/link.safetensors").path), 0)
        XCTAssertEqual(mkfifo(spool.appendingPathComponent("incoming/pipe.safetensors").path, 0o644), 0)
        _ = try rrmd(["submit", "--config", cfg, good])

        let served = try rrmd(["serve", "--config", cfg, "--once"])
        XCTAssertEqual(served.status, 0, served.output)
        XCTAssertEqual(jobs(in: "done").count, 1, served.output)
        let failed = jobs(in: "failed")
        XCTAssertEqual(failed.count, 8, "\(failed)\n\(served.output)")
        for job in failed {
            let error = try JSONSerialization.jsonObject(with: Data(contentsOf: spool.appendingPathComponent("failed/\(job)/error.json"))) as! [String: Any]
            for key in ["what", "where", "what_to_do", "kind"] {
                XCTAssertFalse((error[key] as? String ?? "").isEmpty, "\(job) error.json lacks \(key)")
            }
        }
    }
}

// MARK: - Regressions found in review

extension DaemonProcessTests {
    /// Runs `body` with `path` made immutable (chattr +i: even root cannot create entries in it),
    /// and always makes it mutable again. Skips when the filesystem does not support it.
    private func withImmutable(_ path: String, _ body: () throws -> Void) throws {
        func chattr(_ flag: String) -> Int32 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
            p.arguments = [flag, path]
            p.standardError = FileHandle.nullDevice
            guard (try? p.run()) != nil else { return -1 }
            p.waitUntilExit()
            return p.terminationStatus
        }
        guard chattr("+i") == 0 else { throw XCTSkip("chattr +i is not available here") }
        defer { _ = chattr("-i") }
        try body()
    }

    private func occurrences(of text: String, in log: URL) -> Int {
        String(decoding: (try? Data(contentsOf: log)) ?? Data(), as: UTF8.self).components(separatedBy: text).count - 1
    }

    /// A file in incoming/ that the scan cannot use is reported once, not at every turn of the
    /// main loop (it used to rescan and warn every second).
    func testAScanProblemIsLoggedOnceNotEverySecond() throws {
        let cfg = try config(service: "rescan_seconds = 60")
        let incoming = root.appendingPathComponent("spool/incoming")
        try FileManager.default.createDirectory(at: incoming, withIntermediateDirectories: true)
        // A name that is not UTF-8, created with raw bytes.
        var path = Array(incoming.path.utf8).map { CChar(bitPattern: $0) } + [CChar(bitPattern: 0x2F), CChar(bitPattern: 0xFF)]
        path += Array(".safetensors".utf8).map { CChar(bitPattern: $0) } + [0]
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        close(fd)
        let served = try start(["serve", "--config", cfg])
        usleep(3_500_000)
        kill(served.process.processIdentifier, SIGTERM)
        served.process.waitUntilExit()
        let log = String(decoding: try Data(contentsOf: served.log), as: UTF8.self)
        XCTAssertEqual(occurrences(of: "cannot open it; rename it", in: served.log), 1, log)
    }

    /// A claim that fails (here: work/ cannot take a new directory) waits retry_initial_seconds
    /// before it is tried again, instead of being retried and logged at every turn of the loop.
    func testAFailedClaimWaitsBeforeItIsRetried() throws {
        let cfg = try config(service: "rescan_seconds = 60")
        _ = try rrmd(["submit", "--config", cfg, try teacherFile()])
        try withImmutable(root.appendingPathComponent("spool/work").path) {
            let served = try start(["serve", "--config", cfg])
            usleep(3_500_000)
            kill(served.process.processIdentifier, SIGTERM)
            served.process.waitUntilExit()
            let log = String(decoding: try Data(contentsOf: served.log), as: UTF8.self)
            XCTAssertEqual(occurrences(of: "cannot claim", in: served.log), 1, log)
            XCTAssertTrue(log.contains("next try in 30 s"), log)
        }
        XCTAssertEqual(jobs(in: "incoming").count, 1)
        XCTAssertTrue(jobs(in: "failed").isEmpty)
    }

    /// A student that cannot be written (a full disk, permissions; here an immutable directory)
    /// is a transient error: the job waits in work/ and is published once the cause is gone. It
    /// used to be failed as a "bad-checkpoint", blaming the teacher.
    func testAStudentThatCannotBeWrittenIsRetriedNotFailed() throws {
        let cfg = try config(students: ["cnn-small"], epochs: 30, service: "rescan_seconds = 60\nretry_initial_seconds = 1")
        let job = try rrmd(["submit", "--config", cfg, try teacherFile()]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let served = try start(["serve", "--config", cfg])
        defer { if served.process.isRunning { served.process.terminate(); served.process.waitUntilExit() } }
        let students = root.appendingPathComponent("spool/work/\(job)/out/students").path
        var deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: students) && Date() < deadline && served.process.isRunning { usleep(2_000) }
        try withImmutable(students) {
            deadline = Date().addingTimeInterval(60)
            while occurrences(of: " retry ", in: served.log) == 0 && Date() < deadline && served.process.isRunning { usleep(20_000) }
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

    /// A disk that fills up while a report is written (a real one: the spool on a 4 MiB tmpfs,
    /// filled to the last byte while the teacher is attacked) leaves the job in work/ to be
    /// retried; once space is freed it is published whole, with no temporary file left behind.
    func testAFullDiskWhileReportingIsRetriedNotFailed() throws {
        let mountPoint = root.appendingPathComponent("small-disk")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
        guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "rrmd-test", mountPoint.path]) == 0 else {
            throw XCTSkip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
        }
        defer { _ = run("/bin/umount", ["-l", mountPoint.path]) }
        // Enough attack work that the teacher's evaluation lasts a while: the disk is filled then.
        let cfg = try config(spool: "small-disk/spool", service: "rescan_seconds = 60\nretry_initial_seconds = 1", samples: 200, iterations: 40)
        let job = try rrmd(["submit", "--config", cfg, try teacherFile()]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let served = try start(["serve", "--config", cfg])
        defer { if served.process.isRunning { served.process.terminate(); served.process.waitUntilExit() } }
        var deadline = Date().addingTimeInterval(60)
        while occurrences(of: "attacking the teacher", in: served.log) == 0 && Date() < deadline && served.process.isRunning { usleep(2_000) }
        let ballast = mountPoint.appendingPathComponent("ballast")
        let filled = fill(ballast.path)
        XCTAssertEqual(filled, ENOSPC, "the ballast should have filled the disk")
        deadline = Date().addingTimeInterval(120)
        while occurrences(of: " retry ", in: served.log) == 0 && Date() < deadline && served.process.isRunning { usleep(20_000) }
        var log = String(decoding: try Data(contentsOf: served.log), as: UTF8.self)
        let retry = log.split(separator: "\n").first { $0.contains(" retry ") }.map(String.init) ?? ""
        XCTAssertTrue(retry.contains("reports/teacher"), "the first write to fail should be the teacher's report: \(log)")
        XCTAssertTrue(retry.contains("No space left on device") || retry.contains("ENOSPC"), retry)
        XCTAssertTrue(jobs(in: "failed", spool: "small-disk/spool").isEmpty, log)
        XCTAssertEqual(jobs(in: "work", spool: "small-disk/spool"), [job], log)
        try FileManager.default.removeItem(at: ballast)
        deadline = Date().addingTimeInterval(120)
        while jobs(in: "done", spool: "small-disk/spool").isEmpty && Date() < deadline && served.process.isRunning { usleep(20_000) }
        log = String(decoding: try Data(contentsOf: served.log), as: UTF8.self)
        XCTAssertEqual(jobs(in: "done", spool: "small-disk/spool"), [job], log)
        XCTAssertTrue(jobs(in: "failed", spool: "small-disk/spool").isEmpty, log)
        let done = mountPoint.appendingPathComponent("spool/done/\(job)")
        for file in ["report.json", "report.md", "reports/teacher/report.json", "reports/mlp/report.json", "students/mlp.safetensors.zst"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: done.appendingPathComponent(file).path), "\(file) missing: \(log)")
        }
        let leftovers = (FileManager.default.enumerator(atPath: mountPoint.path)?.allObjects as? [String] ?? [])
            .filter { $0.hasSuffix(".tmp") || $0.contains("/.tmp") || $0.hasSuffix(".part") }
        XCTAssertEqual(leftovers, [], "temporary files left behind")
    }

    /// A configuration whose students cannot be trained in the memory the service may use
    /// (resnet20 ×8 in batches of 1024 under `ulimit -v` 1 GiB) fails the job with the estimate
    /// and what to change; rrmd is not stopped by a failed allocation.
    func testAJobTooLargeForTheMemoryLimitFailsWithAReason() throws {
        let cfg = try config(students: ["resnet20"], width: 8, batchSize: 1024)
        let job = try rrmd(["submit", "--config", cfg, try teacherFile()]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let limited = try start(["-c", "ulimit -v 1048576; exec \"$0\" serve --once --config \"$1\"", Self.binary, cfg], executable: "/bin/sh")
        let deadline = Date().addingTimeInterval(120)
        while limited.process.isRunning && Date() < deadline { usleep(20_000) }
        if limited.process.isRunning { limited.process.terminate(); XCTFail("serve --once did not finish") }
        limited.process.waitUntilExit()
        let log = String(decoding: try Data(contentsOf: limited.log), as: UTF8.self)
        XCTAssertEqual(limited.process.terminationReason, .exit, log)
        XCTAssertEqual(limited.process.terminationStatus, 0, log)
        XCTAssertEqual(jobs(in: "failed"), [job], log)
        let record = try XCTUnwrap(try Spool(root: root.appendingPathComponent("spool")).failure(of: try XCTUnwrap(JobID(job))), log)
        XCTAssertEqual(record.failure.kind, "not-enough-memory", log)
        XCTAssertTrue(record.failure.what.contains("training resnet20 ×8.0 with batches of 1024 needs about"), record.failure.what)
        XCTAssertTrue(record.failure.whatToDo.contains("batch_size"), record.failure.whatToDo)
    }

    /// Runs a system tool quietly and returns its exit status (-1 when it cannot start).
    private func run(_ tool: String, _ arguments: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// Writes zeros to `path` until the filesystem refuses; returns the errno that stopped it.
    private func fill(_ path: String) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 { return errno }
            if n == 0 { return 0 }
        }
    }

    /// The errors a job meets are classified by their errno wherever they come from.
    func testTransientErrorsAreRecognisedInEveryErrorType() throws {
        XCTAssertEqual(JobRunner.transientErrno(of: FileSystemError.system(operation: "write", path: "/x", errno: ENOSPC)), ENOSPC)
        XCTAssertEqual(JobRunner.transientErrno(of: FileSystemError.system(operation: "rename", path: "/x", errno: EIO)), EIO)
        XCTAssertEqual(JobRunner.transientErrno(of: CocoaError(.fileWriteOutOfSpace)), ENOSPC)
        // A report file that met a full disk is retried like a checkpoint; one that can never be
        // written (no errno, or a permanent one) is not.
        XCTAssertEqual(JobRunner.transientErrno(of: ReportWriterError(file: "/x/report.md", reason: "write failed", hint: "", cause: .system(operation: "write", path: "/x/report.md", errno: ENOSPC))), ENOSPC)
        XCTAssertNil(JobRunner.transientErrno(of: ReportWriterError(file: "/x/report.json", reason: "NaN", hint: "")))
        XCTAssertNil(JobRunner.transientErrno(of: ReportWriterError(file: "/x", reason: "not a directory", hint: "", cause: .system(operation: "create directory", path: "/x", errno: ENOTDIR))))
        XCTAssertEqual(JobRunner.transientErrno(of: NSError(domain: NSCocoaErrorDomain, code: CocoaError.fileWriteUnknown.rawValue,
                                                            userInfo: [NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(EDQUOT))])), EDQUOT)
        XCTAssertNil(JobRunner.transientErrno(of: FileSystemError.system(operation: "open", path: "/x", errno: ENOENT)))
        XCTAssertNil(JobRunner.transientErrno(of: CheckpointError.truncated(source: "/x", size: 3)))
        XCTAssertNil(JobRunner.transientErrno(of: SpoolError.missing(path: "/x", reason: "gone")))
        // What Foundation really throws when a directory cannot be created.
        let parent = root.appendingPathComponent("locked")
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        try withImmutable(parent.path) {
            XCTAssertThrowsError(try FileManager.default.createDirectory(at: parent.appendingPathComponent("students"), withIntermediateDirectories: true)) {
                XCTAssertEqual(JobRunner.transientErrno(of: $0), EPERM, "\($0)")
            }
        }
    }

    /// A claimed job and a runner for it, in this process, for the cases a real daemon reaches
    /// only through a failing fsync or rename.
    private func claimedJob() throws -> (spool: Spool, job: ClaimedJob, runner: JobRunner, log: URL) {
        let cfg = try ServiceConfig.load(path: try config())
        let spool = Spool(root: URL(fileURLWithPath: cfg.spool, isDirectory: true))
        try spool.layout.create()
        try FileManager.default.copyItem(atPath: try teacherFile(), toPath: spool.layout.incoming.appendingPathComponent("teacher.safetensors").path)
        let entry = try XCTUnwrap(try spool.scanIncoming().entries.first)
        let job = try XCTUnwrap(try spool.claim(entry))
        let logURL = root.appendingPathComponent("runner.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let handle = try FileHandle(forWritingTo: logURL)
        addTeardownBlock { try? handle.close() }
        let runner = JobRunner(config: cfg, spool: spool, log: EventLog(destination: .fileDescriptor(handle.fileDescriptor)),
                               notifier: SystemdNotifier(), shouldStop: { false }, onStatus: { _ in })
        return (spool, job, runner, logURL)
    }

    /// An attempt that got past publish's commit point (the teacher is in out/) is finished on
    /// the next attempt; it used to find no teacher and fail the job.
    func testARetriedJobFinishesAPublicationThatWasCommitted() throws {
        let (spool, job, runner, _) = try claimedJob()
        try FileManager.default.createDirectory(at: job.output, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: job.output.appendingPathComponent("report.json"))
        try FileManager.default.moveItem(at: job.teacher, to: job.output.appendingPathComponent(job.record.teacher))
        XCTAssertEqual(runner.run(job), .done)
        XCTAssertTrue(FileManager.default.fileExists(atPath: spool.layout.doneDirectory(job.id).appendingPathComponent(job.record.teacher).path))
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
        let failure = SpoolFailure(kind: "diverged", what: "the loss became NaN", whereText: "teacher.safetensors", whatToDo: "lower the learning rate")
        try encoder.encode(FailureRecord(job: job.id, failure: failure, time: Date())).write(to: staging.appendingPathComponent("error.json"))
        try FileManager.default.moveItem(at: job.teacher, to: staging.appendingPathComponent(job.record.teacher))
        XCTAssertEqual(runner.run(job), .failed)
        XCTAssertEqual(try spool.failure(of: job.id)?.failure, failure)
        XCTAssertTrue(FileManager.default.fileExists(atPath: spool.layout.failedDirectory(job.id).appendingPathComponent(job.record.teacher).path))
    }

    /// A job whose work directory was removed by hand is dropped, not retried forever.
    func testAJobRemovedFromWorkIsDropped() throws {
        let (_, job, runner, log) = try claimedJob()
        try FileManager.default.removeItem(at: job.directory)
        XCTAssertEqual(runner.run(job), .vanished)
        XCTAssertEqual(occurrences(of: " dropped job=", in: log), 1)
    }

    /// `rrmd status` run by an operator reports a daemon of another user as running (kill(pid, 0)
    /// answers EPERM for it); it used to say "not running".
    func testStatusSeesADaemonOfAnotherUserAsRunning() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            throw XCTSkip("needs root and setpriv to run `rrmd status` as another user")
        }
        let cfg = try config()
        let spool = Spool(root: root.appendingPathComponent("spool"))
        for dir in [spool.layout.root, spool.layout.tmp, spool.layout.incoming, spool.layout.work, spool.layout.done, spool.layout.failed] {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
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

/// A zstd frame of `blocks` RLE blocks of 128 KiB zeros (4 bytes each) whose header declares
/// `contentSize`: a decompression bomb made without any compressor.
private func zeroBombFrame(blocks: Int, contentSize: UInt64) -> [UInt8] {
    // Descriptor 0xC0: an 8-byte content size, no single-segment flag, so a window byte follows.
    var out: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0xC0, UInt8((20 - 10) << 3)]
    withUnsafeBytes(of: contentSize.littleEndian) { out += $0 }
    for b in 0..<blocks {
        let header = UInt32((128 << 10) << 3) | (1 << 1) | (b == blocks - 1 ? 1 : 0)
        out += [UInt8(header & 0xFF), UInt8((header >> 8) & 0xFF), UInt8(header >> 16), 0]
    }
    return out
}

/// Job ids collected from concurrent submissions.
private final class LockedIDs: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: [String] = []
    func add(_ id: String) { lock.lock(); ids.append(id); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return ids }
}
