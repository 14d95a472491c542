import Checkpoint
import Data
import Foundation
import Models
import Training
import XCTest

/// The daemon as operators run it: a real `rrmd serve` process on a temporary spool, with the
/// digits fixture as its dataset and tiny students so each job takes a second or two.
final class DaemonProcessTests: XCTestCase {
    /// The `rrmd` executable built beside the test bundle.
    private static let binary: String = {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("rrmd").path
    }()

    private static let fixtures: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("DataTests/Fixtures").path

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
    private func config(name: String = "rrmd.toml", students: [String] = ["mlp"], epochs: Int = 1, spool: String = "spool") throws -> String {
        let text = """
            spool = "\(root.appendingPathComponent(spool).path)"
            threads = 2
            [datasets.digits]
            format = "idx"
            path = "\(Self.fixtures)"
            [students]
            architectures = [\(students.map { "\"\($0)\"" }.joined(separator: ", "))]
            width = 0.5
            [rrm]
            epochs = \(epochs)
            batch_size = 50
            learning_rate = 0.05
            [evaluation]
            attacks = ["apgd-ce", "apgd-t"]
            samples = 40
            iterations = 3
            target_classes = 2
            sweep_samples = 20
            check_samples = 20
            [service]
            rescan_seconds = 2
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

    /// Starts rrmd with `arguments`, output into a log file.
    private func start(_ arguments: [String], environment: [String: String] = [:]) throws -> (process: Process, log: URL) {
        let log = root.appendingPathComponent("log-\(UUID().uuidString).txt")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
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
        for file in ["report.md", "students.svg", "job.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: done.appendingPathComponent(file).path), file)
        }
        XCTAssertTrue(jobs(in: "work").isEmpty)
        XCTAssertTrue(served.output.contains("report"), served.output)
    }

    /// A listener on NOTIFY_SOCKET hears READY=1, STATUS= lines and STOPPING=1.
    func testNotifiesSystemd() throws {
        let cfg = try config()
        _ = try rrmd(["submit", "--config", cfg, try teacherFile()])
        let socketPath = root.appendingPathComponent("notify.sock").path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
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

        let served = try start(["serve", "--config", cfg, "--once"], environment: ["NOTIFY_SOCKET": socketPath])
        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 { messages.append(String(decoding: buffer[0..<n], as: UTF8.self)) }
            else if !served.process.isRunning { break }
        }
        served.process.waitUntilExit()
        XCTAssertEqual(served.process.terminationStatus, 0)
        XCTAssertTrue(messages.contains { $0.contains("READY=1") }, "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("STATUS=") && $0.contains("training") }, "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("STOPPING=1") }, "\(messages)")
        let ready = messages.firstIndex { $0.contains("READY=1") }!, stopping = messages.lastIndex { $0.contains("STOPPING=1") }!
        XCTAssertLessThan(ready, stopping)
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
