import Foundation
import Spool
import XCTest

@testable import Service

/// What a watcher reported, collected across threads, with waiting for a condition.
final class WatcherLog: @unchecked Sendable {
    private let condition = NSCondition()
    private(set) var files: [String] = []
    private(set) var rescans: [SpoolWatcher.RescanReason] = []
    private(set) var problems: [String] = []

    func file(_ name: String) {
        condition.lock()
        files.append(name)
        condition.broadcast()
        condition.unlock()
    }
    func rescan(_ reason: SpoolWatcher.RescanReason) {
        condition.lock()
        rescans.append(reason)
        condition.broadcast()
        condition.unlock()
    }
    func problem(_ text: String) {
        condition.lock()
        problems.append(text)
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until `predicate` holds (true) or `timeout` seconds pass (false).
    func wait(timeout: TimeInterval = 5, _ predicate: (WatcherLog) -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while !predicate(self) {
            if !condition.wait(until: deadline) { return predicate(self) }
        }
        return true
    }

    func watcher(_ directory: String, rescanInterval: TimeInterval = 0) -> SpoolWatcher {
        SpoolWatcher(
            directory: directory, rescanInterval: rescanInterval,
            onFile: { [self] in file($0) }, onRescan: { [self] in rescan($0) }, onProblem: { [self] in problem($0) })
    }
}

final class SpoolWatcherTests: XCTestCase {
    var root = ""
    var incoming = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "rrmd-watcher-\(getpid())-\(UUID().uuidString)"
        incoming = root + "/incoming"
        try FileManager.default.createDirectory(atPath: incoming, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/tmp", withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Writes a file in place with one open, write and close, so exactly one IN_CLOSE_WRITE
    /// follows (FileManager.createFile opens the file twice on Linux).
    func write(_ path: String, _ text: String = "teacher") {
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0, path)
        let bytes = Array(text.utf8)
        XCTAssertEqual(Foundation.write(fd, bytes, bytes.count), bytes.count)
        XCTAssertEqual(close(fd), 0)
    }

    func testClosingAWrittenFileIsReported() throws {
        let log = WatcherLog()
        let watcher = log.watcher(incoming)
        try watcher.start()
        defer { watcher.stop() }
        XCTAssertTrue(log.wait { $0.rescans == [.start] }, "the start-up rescan runs once the watch is in place")
        write(incoming + "/teacher.safetensors")
        XCTAssertTrue(log.wait { $0.files.contains("teacher.safetensors") }, "got \(log.files)")
        XCTAssertTrue(watcher.isRunning)
    }

    func testRenameFromSiblingDirectoryIsReported() throws {
        let log = WatcherLog()
        let watcher = log.watcher(incoming)
        try watcher.start()
        defer { watcher.stop() }
        // Written in tmp/ first: that close must not be seen; only the rename into incoming/.
        write(root + "/tmp/robust.safetensors.zst")
        XCTAssertEqual(rename(root + "/tmp/robust.safetensors.zst", incoming + "/robust.safetensors.zst"), 0)
        XCTAssertTrue(log.wait { $0.files == ["robust.safetensors.zst"] }, "got \(log.files)")
    }

    func testHiddenTemporaryAndPartialFilesAreIgnored() throws {
        let log = WatcherLog()
        let watcher = log.watcher(incoming)
        try watcher.start()
        defer { watcher.stop() }
        for name in [".hidden.safetensors", "upload.tmp", "download.part", "UPPER.PART"] {
            write(incoming + "/" + name)
        }
        write(root + "/tmp/moved.tmp")
        XCTAssertEqual(rename(root + "/tmp/moved.tmp", incoming + "/moved.tmp"), 0)
        try FileManager.default.createDirectory(atPath: root + "/tmp/adir", withIntermediateDirectories: false)
        XCTAssertEqual(rename(root + "/tmp/adir", incoming + "/adir"), 0)
        // Events arrive in order, so once the sentinel is in, everything before it was seen and dropped.
        write(incoming + "/sentinel")
        XCTAssertTrue(log.wait { $0.files.contains("sentinel") })
        XCTAssertEqual(log.files, ["sentinel"])
    }

    func testIgnoreRule() {
        for name in [".x", ".teacher.safetensors", "a.tmp", "a.part", "a.TMP", "", "x.safetensors.part"] {
            XCTAssertTrue(SpoolNames.isIgnored(name), name)
        }
        for name in ["teacher.safetensors", "t.safetensors.zst", "tmp", "part", "a.tmp.safetensors", "x."] {
            XCTAssertFalse(SpoolNames.isIgnored(name), name)
        }
    }

    func testStopReturnsPromptlyAndTwice() throws {
        let log = WatcherLog()
        let watcher = log.watcher(incoming)
        try watcher.start()
        XCTAssertTrue(log.wait { !$0.rescans.isEmpty })
        let t0 = Date()
        watcher.stop()
        let took = Date().timeIntervalSince(t0)
        XCTAssertLessThan(took, 2.5, "stop waits at most one poll slice (1 s) plus the drain")
        XCTAssertFalse(watcher.isRunning)
        watcher.stop()  // idempotent
        // Nothing is reported after stop.
        write(incoming + "/late")
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(log.files, [])
    }

    func testEventsOfAStoppedWatcherDoNotLeakIntoTheNext() throws {
        let first = WatcherLog()
        let a = first.watcher(incoming)
        try a.start()
        write(incoming + "/before-stop")
        a.stop()
        let second = WatcherLog()
        let b = second.watcher(incoming)
        try b.start()
        defer { b.stop() }
        write(incoming + "/after-restart")
        XCTAssertTrue(second.wait { $0.files.contains("after-restart") })
        XCTAssertEqual(second.files, ["after-restart"], "the new watcher must not replay the old one's buffered events")
    }

    func testMissingDirectoryAndFileAreClearErrors() throws {
        let log = WatcherLog()
        XCTAssertThrowsError(try log.watcher(root + "/nope").start()) { error in
            XCTAssertEqual(error as? SpoolWatcherError, .directoryMissing(root + "/nope"))
            XCTAssertTrue("\(error)".contains("does not exist"), "\(error)")
        }
        write(root + "/plain")
        XCTAssertThrowsError(try log.watcher(root + "/plain").start()) { error in
            XCTAssertEqual(error as? SpoolWatcherError, .notADirectory(root + "/plain"))
        }
        XCTAssertEqual(log.rescans, [])
    }

    func testOnlyOneWatcherPerProcess() throws {
        let log = WatcherLog()
        let a = log.watcher(incoming)
        try a.start()
        XCTAssertThrowsError(try log.watcher(root + "/tmp").start()) { error in
            XCTAssertEqual(error as? SpoolWatcherError, .alreadyWatching(other: incoming))
        }
        a.stop()
        let b = log.watcher(root + "/tmp")
        XCTAssertNoThrow(try b.start(), "the library is free again after stop")
        b.stop()
    }

    func testPeriodicRescan() throws {
        let log = WatcherLog()
        let watcher = log.watcher(incoming, rescanInterval: 1)
        try watcher.start()
        defer { watcher.stop() }
        XCTAssertTrue(log.wait(timeout: 6) { $0.rescans.filter { $0 == .periodic }.count >= 2 }, "got \(log.rescans)")
        XCTAssertEqual(log.rescans.first, .start)
    }

    func testVanishedDirectoryIsWatchedAgainWhenItReturns() throws {
        let log = WatcherLog()
        let watcher = log.watcher(incoming)
        try watcher.start()
        defer { watcher.stop() }
        try FileManager.default.removeItem(atPath: incoming)
        XCTAssertTrue(log.wait { !$0.problems.isEmpty }, "a vanished directory is reported")
        XCTAssertTrue(log.problems[0].contains("can no longer be watched"), log.problems[0])
        try FileManager.default.createDirectory(atPath: incoming, withIntermediateDirectories: false)
        XCTAssertTrue(log.wait { $0.rescans.contains(.rewatched) }, "got \(log.rescans)")
        write(incoming + "/back")
        XCTAssertTrue(log.wait { $0.files.contains("back") }, "got \(log.files)")
    }

    func testStopFromAHandlerDoesNotDeadlock() throws {
        let log = WatcherLog()
        let box = LockedBox<SpoolWatcher?>(nil)
        let watcher = SpoolWatcher(
            directory: incoming, rescanInterval: 0,
            onFile: { name in
                log.file(name)
                box.value?.stop()
            }, onRescan: { log.rescan($0) })
        box.value = watcher
        try watcher.start()
        write(incoming + "/stop-me")
        XCTAssertTrue(log.wait { $0.files == ["stop-me"] })
        XCTAssertTrue(log.wait { _ in !watcher.isRunning })
        watcher.stop()  // waits for the thread's exit, which the handler's stop began
        box.value = nil
    }
}
