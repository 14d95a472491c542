import Foundation
import Spool
import TestSupport
import XCTest

@testable import Service

/// The daemon in process, against fakes (a manual clock, a recording notifier, signals and
/// watcher driven by hand, scripted jobs): its queue, retries, stop and reload, without
/// processes or sleeps. What only a process can show (SIGKILL, NOTIFY_SOCKET, the unit) stays
/// in DaemonProcessTests and DaemonQueueTests.
final class DaemonServiceTests: XCTestCase {
    /// A daemon on a fresh spool with fakes all round.
    struct Harness {
        var daemon: Daemon
        var clock = ManualClock()
        var notifier = RecordingNotifier()
        var signals = ManualSignals()
        var watcher = ManualWatcher()
        var spool: Spool
        var root: URL
        var logPath: String
        var configPath: String

        /// Puts a (fake) teacher named `name` into incoming/ as `rrmd submit` does.
        func submit(_ name: String) throws {
            let file = root.appendingPathComponent(name)
            try Data("teacher \(name)".utf8).write(to: file)
            _ = try spool.submit(file: file)
        }

        func jobs(in state: String) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("spool/\(state)").path))
                ?? [])
                .filter { !$0.hasPrefix(".") }.sorted()
        }

        var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

        /// Has the watcher report a change every simulated second for `seconds` seconds (so the
        /// loop scans every second), then waits until the daemon is idle.
        func scanEverySecond(for seconds: Int) async {
            for _ in 0..<seconds {
                await daemon.idle()
                watcher.report()
                clock.advance(by: 1)
            }
            await daemon.idle()
        }

        /// Lets the daemon work until it waits for something, moving the clock on by a second
        /// whenever it does, until `done` holds (or it has waited `limit` times).
        func drive(limit: Int = 100, until done: () -> Bool) async {
            for _ in 0..<limit {
                await daemon.idle()
                if done() { return }
                clock.advance(by: 1)
            }
            XCTFail("the daemon did not get there in \(limit) simulated seconds")
        }
    }

    func makeHarness(
        once: Bool, executor: ScriptedExecutor, service: String = "", configPath: String? = nil
    ) throws -> Harness {
        let root = try makeTemporaryDirectory("daemon-service", removedAfter: self)
        let text = """
            spool = "\(root.appendingPathComponent("spool").path)"
            threads = 1
            [service]
            rescan_seconds = 30
            retry_initial_seconds = 10
            retry_max_seconds = 40
            \(service)
            """
        let path = configPath ?? root.appendingPathComponent("rrmd.toml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try ServiceConfig.load(path: path)
        let logPath = root.appendingPathComponent("journal.txt").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let fd = open(logPath, O_WRONLY | O_APPEND)
        addTeardownBlock { close(fd) }
        let clock = ManualClock()
        let notifier = RecordingNotifier()
        let signals = ManualSignals()
        let watcher = ManualWatcher()
        let environment = DaemonEnvironment(
            clock: clock, notifier: notifier, signals: signals,
            watcher: { _, _, _ in watcher }, executor: executor)
        let daemon = Daemon(
            config: config, configPath: path, once: once,
            log: EventLog(identifier: "rrmd", destination: .fileDescriptor(fd)), environment: environment)
        let spool = Spool(root: URL(fileURLWithPath: config.spool, isDirectory: true))
        try spool.layout.create()
        return Harness(
            daemon: daemon, clock: clock, notifier: notifier, signals: signals, watcher: watcher,
            spool: spool, root: root, logPath: logPath, configPath: path)
    }

    /// Teachers are run one at a time in the order they arrived, each published; a one-shot run
    /// ends when the queue is empty, after READY=1 and with STOPPING=1.
    func testJobsRunOneAtATimeInArrivalOrder() async throws {
        let executor = ScriptedExecutor.publishing()
        let h = try makeHarness(once: true, executor: executor)
        for i in 1...4 { try h.submit("t\(i).safetensors") }
        let run = Task { try await h.daemon.run() }
        await h.drive { h.log.contains("stopping") }
        try await run.value
        XCTAssertEqual(executor.runs, ["t1.safetensors", "t2.safetensors", "t3.safetensors", "t4.safetensors"])
        XCTAssertEqual(h.jobs(in: "incoming"), [])
        XCTAssertEqual(h.jobs(in: "work"), [])
        XCTAssertEqual(h.notifier.messages.first, "READY=1")
        XCTAssertTrue(h.notifier.messages.contains("STOPPING=1"))
        XCTAssertTrue(h.log.contains("queue empty (--once)"), h.log)
    }

    /// A job that asks to be retried waits for retry_initial_seconds of the daemon's clock, not
    /// the wall's, and then runs again and finishes; the worker is free meanwhile, so a teacher
    /// that arrives in the pause runs first.
    func testRetryWaitsOnTheClock() async throws {
        let executor = ScriptedExecutor { job, context, attempt in
            attempt == 1 && job.record.originalName == "a.safetensors"
                ? .retryLater("disk full") : ScriptedExecutor.publish(job, context)
        }
        let h = try makeHarness(once: false, executor: executor)
        try h.submit("a.safetensors")
        let run = Task { try await h.daemon.run() }
        await h.daemon.idle()
        XCTAssertEqual(executor.runs, ["a.safetensors"])
        XCTAssertTrue(h.log.contains("will be retried in 10 s: disk full"), h.log)
        // Nine seconds on: b, which arrived meanwhile, has run; a still waits.
        try h.submit("b.safetensors")
        h.watcher.report()
        for _ in 0..<9 {
            h.clock.advance(by: 1)
            await h.daemon.idle()
        }
        XCTAssertEqual(executor.runs, ["a.safetensors", "b.safetensors"])
        XCTAssertEqual(h.jobs(in: "done").count, 1)
        XCTAssertEqual(h.jobs(in: "work").count, 1)
        // The tenth second: the retry.
        h.clock.advance(by: 1)
        await h.daemon.idle()
        XCTAssertEqual(executor.runs, ["a.safetensors", "b.safetensors", "a.safetensors"])
        XCTAssertEqual(h.jobs(in: "done").count, 2)
        h.signals.send(.stop)
        try await run.value
    }

    /// While a job runs, the daemon answers a reload at once (RELOADING=1, then READY=1) and a
    /// stop request with STOPPING=1; the job sees the stop at its next step boundary, ends as
    /// stopped, and stays in work/ for the next start.
    func testServesReloadAndStopWhileAJobRuns() async throws {
        let release = DispatchSemaphore(value: 0)
        let executor = ScriptedExecutor { _, context, _ in
            release.wait()
            return context.shouldStop() ? .stopped : .done
        }
        let h = try makeHarness(once: false, executor: executor)
        try h.submit("long.safetensors")
        let run = Task { try await h.daemon.run() }
        await h.daemon.idle(whileAJobRuns: true)
        XCTAssertEqual(executor.runs, ["long.safetensors"])
        XCTAssertEqual(h.jobs(in: "work").count, 1)

        h.signals.send(.reload)
        await h.daemon.idle(whileAJobRuns: true)
        let afterReload = h.notifier.messages
        XCTAssertEqual(afterReload.filter { $0 == "RELOADING=1" }.count, 1, "\(afterReload)")
        XCTAssertEqual(afterReload.last(where: { $0 == "READY=1" || $0 == "RELOADING=1" }), "READY=1")
        XCTAssertTrue(h.log.contains("configuration re-read"), h.log)

        h.signals.send(.stop)
        await h.daemon.idle(whileAJobRuns: true)
        XCTAssertTrue(h.notifier.messages.contains("STOPPING=1"), "STOPPING=1 must go out before the job has ended")
        release.signal()
        try await run.value
        XCTAssertEqual(h.jobs(in: "work").count, 1, "a stopped job stays in work/")
        XCTAssertTrue(h.log.contains("stop requested; state saved"), h.log)
    }

    /// A teacher that arrives while the daemon is idle is claimed when the watcher reports it
    /// (after the minimum second between scans), not at the next periodic rescan.
    func testAnArrivalIsClaimedWhenTheWatcherReportsIt() async throws {
        let executor = ScriptedExecutor.publishing()
        let h = try makeHarness(once: false, executor: executor)
        let run = Task { try await h.daemon.run() }
        await h.daemon.idle()
        try h.submit("late.safetensors")
        h.watcher.report()
        await h.daemon.idle()
        h.clock.advance(by: 1)
        await h.drive(limit: 3) { h.jobs(in: "done").count == 1 }
        XCTAssertEqual(executor.runs, ["late.safetensors"])
        h.daemon.requestStop()
        try await run.value
    }

    /// Twenty teachers submitted at the same moment from twenty threads (what twenty `rrmd
    /// submit` do) are each run exactly once and published, in submission order of their ids.
    func testTwentySubmissionsAtOnceAreEachServedOnce() async throws {
        let executor = ScriptedExecutor.publishing()
        let h = try makeHarness(once: true, executor: executor)
        let files = try (0..<20).map { i -> URL in
            let file = h.root.appendingPathComponent("t\(i).safetensors")
            try Data("teacher \(i)".utf8).write(to: file)
            return file
        }
        let ids = LockedBox<[String]>([])
        DispatchQueue.concurrentPerform(iterations: files.count) { i in
            if let id = try? h.spool.submit(file: files[i]) { ids.withLock { $0.append(id.rawValue) } }
        }
        XCTAssertEqual(Set(ids.value).count, 20)
        let run = Task { try await h.daemon.run() }
        await h.drive { h.log.contains("stopping") }
        try await run.value
        XCTAssertEqual(Set(h.jobs(in: "done")), Set(ids.value))
        XCTAssertEqual(executor.runs.count, 20)
        XCTAssertEqual(Set(executor.runs).count, 20, "a teacher was run twice: \(executor.runs)")
        XCTAssertTrue(h.jobs(in: "incoming").isEmpty && h.jobs(in: "work").isEmpty && h.jobs(in: "failed").isEmpty)
    }

    /// A file in incoming/ that a scan cannot use is reported once, then again only after
    /// retry_max_seconds (40 here), however often the loop scans meanwhile (it used to warn at
    /// every scan, once a second).
    func testAScanProblemIsLoggedOnceNotAtEveryScan() async throws {
        let executor = ScriptedExecutor.publishing()
        let h = try makeHarness(once: false, executor: executor)
        // A name that is not UTF-8, created with raw bytes.
        let incoming = h.root.appendingPathComponent("spool/incoming")
        var path =
            Array(incoming.path.utf8).map { CChar(bitPattern: $0) } + [
                CChar(bitPattern: 0x2F), CChar(bitPattern: 0xFF),
            ]
        path += Array(".safetensors".utf8).map { CChar(bitPattern: $0) } + [0]
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        close(fd)
        let run = Task { try await h.daemon.run() }
        // A scan every simulated second for 39 seconds: one warning.
        await h.scanEverySecond(for: 39)
        XCTAssertEqual(h.log.components(separatedBy: "cannot open it; rename it").count - 1, 1, h.log)
        // At 40 s it is repeated.
        h.watcher.report()
        h.clock.advance(by: 1)
        await h.daemon.idle()
        XCTAssertEqual(h.log.components(separatedBy: "cannot open it; rename it").count - 1, 2, h.log)
        h.daemon.requestStop()
        try await run.value
    }

    /// A claim that fails (work/ cannot take a new directory: it is immutable) waits
    /// retry_initial_seconds before it is tried again, however many scans happen meanwhile, and
    /// the teacher stays in incoming/, not failed.
    func testAFailedClaimWaitsBeforeItIsRetried() async throws {
        let executor = ScriptedExecutor.publishing()
        let h = try makeHarness(once: false, executor: executor)
        try h.submit("blocked.safetensors")
        let work = h.root.appendingPathComponent("spool/work").path
        guard chattr("+i", work) == 0 else { throw XCTSkip("chattr +i is not available here") }
        var immutable = true
        defer { if immutable { _ = chattr("-i", work) } }
        let run = Task { try await h.daemon.run() }
        await h.scanEverySecond(for: 9)
        XCTAssertEqual(h.log.components(separatedBy: "cannot claim").count - 1, 1, h.log)
        XCTAssertTrue(h.log.contains("next try in 10 s"), h.log)
        XCTAssertEqual(h.jobs(in: "incoming").count, 1)
        XCTAssertTrue(h.jobs(in: "failed").isEmpty)
        // Writable again: the tenth second's retry claims it and the job runs.
        _ = chattr("-i", work)
        immutable = false
        await h.drive { h.jobs(in: "done").count == 1 }
        XCTAssertEqual(executor.runs, ["blocked.safetensors"])
        h.daemon.requestStop()
        try await run.value
    }

    /// A reload that finds a bad file keeps the old configuration (and says so), and the daemon
    /// goes on serving.
    func testAReloadRejectsABadConfigurationAndServesOn() async throws {
        let executor = ScriptedExecutor.publishing()
        let h = try makeHarness(once: false, executor: executor)
        let run = Task { try await h.daemon.run() }
        await h.daemon.idle()
        try "spool = 42\n".write(toFile: h.configPath, atomically: true, encoding: .utf8)
        h.signals.send(.reload)
        await h.daemon.idle()
        XCTAssertTrue(h.log.contains("new configuration rejected, keeping the old one"), h.log)
        XCTAssertEqual(h.notifier.messages.filter { $0 == "RELOADING=1" }.count, 1)
        XCTAssertEqual(h.notifier.messages.last { $0 == "READY=1" || $0 == "RELOADING=1" }, "READY=1")
        try h.submit("after.safetensors")
        h.watcher.report()
        await h.drive { h.jobs(in: "done").count == 1 }
        XCTAssertEqual(executor.runs, ["after.safetensors"])
        h.daemon.requestStop()
        try await run.value
    }

    /// A file above max_teacher_bytes is failed as too large without being claimed (hashed) or
    /// run, and the daemon goes on.
    func testAnOversizedTeacherIsRefusedUnread() async throws {
        let executor = ScriptedExecutor.publishing()
        let h = try makeHarness(once: true, executor: executor, service: "max_teacher_bytes = 1048576")
        let big = h.root.appendingPathComponent("big.safetensors")
        try Data(repeating: 7, count: 1_500_000).write(to: big)
        let job = try h.spool.submit(file: big)
        try h.submit("small.safetensors")
        let run = Task { try await h.daemon.run() }
        await h.drive { h.log.contains("stopping") }
        try await run.value
        XCTAssertEqual(h.jobs(in: "failed"), [job.rawValue])
        XCTAssertEqual(try h.spool.failure(of: job)?.failure.kind, "too-large")
        XCTAssertEqual(executor.runs, ["small.safetensors"])
        XCTAssertFalse(h.log.contains("big.safetensors ("), "an oversized file must not be claimed: \(h.log)")
    }

    /// A one-shot run ends instead of waiting out a retry, and leaves the job in work/ with the
    /// reason in the journal.
    func testOneShotRunLeavesARetryForTheNextStart() async throws {
        let executor = ScriptedExecutor { _, _, _ in .retryLater("dataset missing") }
        let h = try makeHarness(once: true, executor: executor)
        try h.submit("x.safetensors")
        let run = Task { try await h.daemon.run() }
        await h.drive { h.log.contains("stopping") }
        try await run.value
        XCTAssertEqual(executor.runs, ["x.safetensors"])
        XCTAssertEqual(h.jobs(in: "work").count, 1)
        XCTAssertTrue(h.log.contains("left in work/ waiting for a retry"), h.log)
    }
}
