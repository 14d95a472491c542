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

/// What the daemon's process tests share: the `rrmd` binary beside the test bundle, a small digits
/// teacher, a temporary spool per test, and helpers to configure, start and watch `rrmd serve`.
class DaemonTestCase: XCTestCase {
    /// The `rrmd` executable built beside the test bundle.
    static let binary: String = {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("rrmd").path
    }()

    static let fixtures = TestFixtures.dataDirectory

    /// A small teacher trained once: cnn-small ×0.5 on digits, one epoch.
    static let teacher: (network: Network, data: (train: Dataset, test: Dataset)) = {
        let data = try! DatasetCatalog.load("digits", directory: fixtures)
        let stats = data.train.channelStatistics()
        let net = try! ModelRegistry.make(
            "cnn-small",
            config: ModelConfig(
                channels: 1, height: 8, width: 8, numClasses: 10, widthMultiplier: 0.5,
                mean: stats.mean, std: stats.std), seed: 1)
        _ = Trainer(
            model: net,
            settings: TrainingSettings(epochs: 1, batchSize: 50, learningRate: 0.05, cropPadding: 0, seed: 1)
        )
        .run(train: data.train, test: data.test)
        return (net, data)
    }()

    var root: URL!

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
    func config(
        name: String = "rrmd.toml", students: [String] = ["mlp"], epochs: Int = 1, spool: String = "spool",
        service: String = "rescan_seconds = 2", samples: Int = 40, iterations: Int = 3,
        width: Double = 0.5, batchSize: Int = 50, extra: String = ""
    ) throws -> String {
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
            probe_images = 64
            probe_iterations = 5
            [evaluation]
            attacks = ["apgd-ce", "apgd-t"]
            samples = \(samples)
            iterations = \(iterations)
            target_classes = 2
            sweep_samples = 20
            check_samples = 20
            [service]
            \(service)
            \(extra)
            """
        let path = root.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Saves the teacher (with `seed` in its metadata, which changes its bytes) and returns the path.
    func teacherFile(seed: UInt64 = 1, name: String = "teacher.safetensors") throws -> String {
        let path = root.appendingPathComponent(name).path
        let meta = ModelMetadata(
            model: Self.teacher.network, dataset: "digits", threatModel: "linf:0.1", trainedBy: "natural", seed: seed)
        try SafeTensors(Self.teacher.network.stateTensors(), metadata: meta.dictionary).write(toFile: path)
        return path
    }

    /// Runs rrmd with `arguments`; returns its exit status and output.
    @discardableResult
    func rrmd(
        _ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 120
    ) throws -> (status: Int32, output: String) {
        let p = try start(arguments, environment: environment)
        let deadline = Date().addingTimeInterval(timeout)
        while p.process.isRunning && Date() < deadline { usleep(20_000) }
        if p.process.isRunning {
            p.process.terminate()
            XCTFail("rrmd \(arguments) did not finish in \(timeout) s")
        }
        p.process.waitUntilExit()
        return (p.process.terminationStatus, String(decoding: (try? Data(contentsOf: p.log)) ?? Data(), as: UTF8.self))
    }

    /// Starts rrmd (or `executable`) with `arguments`, output into a log file.
    func start(
        _ arguments: [String], environment: [String: String] = [:], executable: String? = nil
    ) throws -> (process: Process, log: URL) {
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

    func jobs(in state: String, spool: String = "spool") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("\(spool)/\(state)").path))
            ?? [])
            .filter { !$0.hasPrefix(".") }.sorted()
    }

    /// A listener on NOTIFY_SOCKET hears READY=1, STATUS= lines and STOPPING=1.
    /// A datagram socket standing in for systemd's notify socket: its descriptor and path.
    func notifySocket() throws -> (fd: Int32, path: String) {
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
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        XCTAssertEqual(bound, 0, "bind \(socketPath)")
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return (fd, socketPath)
    }

    /// Every notify message `process` sends to `fd` until it exits (or two minutes pass).
    func notifications(_ fd: Int32, from process: Process) -> [String] {
        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 {
                messages.append(String(decoding: buffer[0..<n], as: UTF8.self))
            } else if !process.isRunning {
                break
            }
        }
        process.waitUntilExit()
        return messages
    }

    // MARK: - Regressions found in review

    /// Runs `body` with `path` made immutable (chattr +i: even root cannot create entries in it),
    /// and always makes it mutable again. Skips when the filesystem does not support it.
    func withImmutable(_ path: String, _ body: () throws -> Void) throws {
        guard chattr("+i", path) == 0 else { throw XCTSkip("chattr +i is not available here") }
        defer { _ = chattr("-i", path) }
        try body()
    }

    func occurrences(of text: String, in log: URL) -> Int {
        String(decoding: (try? Data(contentsOf: log)) ?? Data(), as: UTF8.self).components(separatedBy: text).count - 1
    }

    /// A claimed job and a runner for it, in this process, for the cases a real daemon reaches
    /// only through a failing fsync or rename.
    func claimedJob() throws -> (spool: Spool, job: ClaimedJob, runner: JobRunner, log: URL) {
        let cfg = try ServiceConfig.load(path: try config())
        let spool = Spool(root: URL(fileURLWithPath: cfg.spool, isDirectory: true))
        try spool.layout.create()
        try FileManager.default.copyItem(
            atPath: try teacherFile(), toPath: spool.layout.incoming.appendingPathComponent("teacher.safetensors").path)
        let entry = try XCTUnwrap(try spool.scanIncoming().entries.first)
        let job = try XCTUnwrap(try spool.claim(entry))
        let logURL = root.appendingPathComponent("runner.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let handle = try FileHandle(forWritingTo: logURL)
        addTeardownBlock { try? handle.close() }
        let runner = JobRunner(
            config: cfg, spool: spool, log: EventLog(destination: .fileDescriptor(handle.fileDescriptor)),
            notifier: SystemdNotifier(), shouldStop: { false }, onStatus: { _ in })
        return (spool, job, runner, logURL)
    }
}

/// Runs chattr with `flag` (`+i`, `-i`) on `path`; its exit status (-1 when it cannot start).
func chattr(_ flag: String, _ path: String) -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
    p.arguments = [flag, path]
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return -1 }
    p.waitUntilExit()
    return p.terminationStatus
}
