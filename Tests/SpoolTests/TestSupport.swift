import Foundation
import XCTest

@testable import Spool

#if canImport(Glibc)
import Glibc
#endif

/// A fresh spool in a temporary directory for each test, removed afterwards.
class SpoolTestCase: XCTestCase {
    var base: URL!
    var spool: Spool!
    var layout: SpoolLayout { spool.layout }
    /// Where tests keep the files they submit (outside the spool).
    var sources: URL { base.appendingPathComponent("sources", isDirectory: true) }

    override func setUpWithError() throws {
        base = URL(fileURLWithPath: NSTemporaryDirectory(), isDirectory: true)
            .appendingPathComponent(
                "rrmd-spool-tests-\(getpid())-\(UInt64.random(in: 0...UInt64.max))", isDirectory: true)
        try FileManager.default.createDirectory(at: sources, withIntermediateDirectories: true)
        spool = Spool(root: base.appendingPathComponent("spool", isDirectory: true))
        try layout.create()
    }

    override func tearDownWithError() throws {
        _ = chmod(layout.incoming.path, 0o750)
        try? FileManager.default.removeItem(at: base)
    }

    /// Writes `bytes` to `url`.
    func write(_ bytes: [UInt8], to url: URL) throws {
        try Data(bytes).write(to: url)
    }

    /// Writes a source file named `name` holding `bytes` and submits it.
    @discardableResult
    func submit(_ bytes: [UInt8], name: String = "robust.safetensors.zst") throws -> JobID {
        let file = sources.appendingPathComponent(name)
        try write(bytes, to: file)
        return try spool.submit(file: file)
    }

    /// Submits `bytes`, then scans and claims it.
    func submitAndClaim(_ bytes: [UInt8], name: String = "robust.safetensors.zst") throws -> ClaimedJob {
        let id = try submit(bytes, name: name)
        let entry = try XCTUnwrap(spool.scanIncoming().entries.first { $0.job == id })
        return try XCTUnwrap(spool.claim(entry))
    }

    /// The names in `url`, sorted; none when it does not exist.
    func names(_ url: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted()
    }

    /// The JSON object in the file at `url`.
    func jsonObject(_ url: URL) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    /// The `lstat` kind of `url`, nil when nothing is there.
    func kind(_ url: URL) -> FS.Kind? {
        (try? FS.info(url.path))??.kind
    }

    /// What `sha256sum` says of the file at `url`.
    func sha256sum(_ url: URL) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [url.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: output, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
    }

    /// Sets the modification time of `url` (not following links).
    func setModified(_ url: URL, secondsSince1970 seconds: Int) {
        var times = [timespec(tv_sec: seconds, tv_nsec: 0), timespec(tv_sec: seconds, tv_nsec: 0)]
        XCTAssertEqual(utimensat(AT_FDCWD, url.path, &times, AT_SYMLINK_NOFOLLOW), 0)
    }

    /// Runs `body` on another thread and fails (instead of hanging) if it takes longer than
    /// `seconds`; `unblock` then runs to release whatever it waits on.
    func finishes(within seconds: Double, unblock: @escaping () -> Void = {}, _ body: @escaping () throws -> Void) {
        let finished = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        Thread.detachNewThread {
            do { try body() } catch { outcome.set(error) }
            finished.signal()
        }
        if finished.wait(timeout: .now() + seconds) == .timedOut {
            XCTFail("did not finish within \(seconds) s (blocked opening a special file?)")
            unblock()
            _ = finished.wait(timeout: .now() + 10)
        }
        if let failure = outcome.error { XCTFail("threw \(failure)") }
    }
}

/// The error a background body threw, handed across threads under a lock.
private final class Outcome: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Error?
    func set(_ error: Error) { lock.withLock { stored = error } }
    var error: Error? { lock.withLock { stored } }
}

/// Distinct bytes for test teachers.
func teacherBytes(_ seed: Int, count: Int = 1000) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &* 7 &+ ($0 >> 8)) }
}
