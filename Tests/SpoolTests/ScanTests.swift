import Foundation
import XCTest

@testable import Spool

#if canImport(Glibc)
import Glibc
#endif

final class ScanTests: SpoolTestCase {
    func testArrivalOrderAndIgnoredNames() throws {
        let now = Int(Date().timeIntervalSince1970)
        // Dropped by hand: ordered by modification time, then name.
        for (name, age) in [("c.safetensors", 300), ("a.safetensors", 100), ("b.safetensors", 300)] {
            let url = layout.incoming.appendingPathComponent(name)
            try write([1], to: url)
            setModified(url, secondsSince1970: now - age)
        }
        // Named by rrmd submit: ordered by the id's time, whatever the file's own time.
        let early = JobID(date: Date(timeIntervalSince1970: TimeInterval(now - 200)), random: 0xffff_ffff)
        let earlyURL = layout.incoming.appendingPathComponent("\(early)--x.safetensors")
        try write([2], to: earlyURL)
        setModified(earlyURL, secondsSince1970: now)
        // The case rule of issue 14: an upload named X.PART is as unfinished as x.part, for the
        // scan that claims as for the inotify watcher (one rule, SpoolNames.isIgnored).
        for ignored in [
            ".hidden.safetensors", "copy.safetensors.tmp", "upload.safetensors.part", ".x.tmp", "BIG.SAFETENSORS.PART",
            "Copy.Tmp",
        ] {
            try write([3], to: layout.incoming.appendingPathComponent(ignored))
        }
        let scan = try spool.scanIncoming()
        XCTAssertEqual(
            scan.entries.map(\.name), ["b.safetensors", "c.safetensors", "\(early)--x.safetensors", "a.safetensors"])
        XCTAssertEqual(scan.entries.map(\.job), [nil, nil, early, nil])
        XCTAssertEqual(scan.refused, [])
        XCTAssertEqual(scan.problems, [])
        XCTAssertEqual(names(layout.incoming).count, 10, "scanning moves nothing that is regular or ignored")
        XCTAssertEqual(try spool.snapshot().incoming, scan.entries.map(\.name))
    }

    func testLinksAreRefusedIntoFailedWithoutBeingFollowed() throws {
        let secret = sources.appendingPathComponent("secret")
        try write(Array("not for rrmd".utf8), to: secret)
        let toFile = layout.incoming.appendingPathComponent("teacher-link.safetensors")
        let toShadow = layout.incoming.appendingPathComponent("shadow.safetensors")
        XCTAssertEqual(symlink(secret.path, toFile.path), 0)
        XCTAssertEqual(symlink("/etc/shadow", toShadow.path), 0)
        let scan = try spool.scanIncoming()
        XCTAssertEqual(scan.entries, [])
        XCTAssertEqual(scan.problems, [])
        XCTAssertEqual(Set(scan.refused.map(\.name)), ["teacher-link.safetensors", "shadow.safetensors"])
        XCTAssertEqual(names(layout.incoming), [])
        XCTAssertEqual(names(layout.work), [])
        for refused in scan.refused {
            let directory = layout.failedDirectory(refused.job)
            XCTAssertEqual(names(directory), ["error.json", "teacher.safetensors"])
            let moved = directory.appendingPathComponent("teacher.safetensors")
            XCTAssertEqual(kind(moved), .symlink, "the link itself was moved")
            let target = try FileManager.default.destinationOfSymbolicLink(atPath: moved.path)
            XCTAssertEqual(target, refused.name == "shadow.safetensors" ? "/etc/shadow" : secret.path)
            let error = try jsonObject(directory.appendingPathComponent("error.json"))
            XCTAssertEqual(error["kind"] as? String, "special-file")
            XCTAssertEqual(error["job"] as? String, refused.job.rawValue)
            XCTAssertEqual(error["where"] as? String, "incoming/\(refused.name)")
            let what = try XCTUnwrap(error["what"] as? String)
            XCTAssertTrue(what.contains("symbolic link pointing to '\(target)'"), what)
            XCTAssertTrue((error["what_to_do"] as? String)?.contains("rrmd submit") == true)
            XCTAssertNotNil(error["time"] as? String)
            XCTAssertEqual(try spool.failure(of: refused.job)?.failure, refused.failure)
        }
        XCTAssertEqual(try String(contentsOf: secret, encoding: .utf8), "not for rrmd")
    }

    func testFifoAndDirectoryAreRefusedWithoutBeingOpened() throws {
        let fifo = layout.incoming.appendingPathComponent("pipe.safetensors")
        XCTAssertEqual(mkfifo(fifo.path, 0o600), 0)
        let directory = layout.incoming.appendingPathComponent("folder")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        try write([1], to: directory.appendingPathComponent("inside.safetensors"))
        var scan = IncomingScan()
        // Opening the FIFO for reading would block until a writer came; if the spool ever did,
        // the writer opened here releases it and the test fails instead of hanging.
        finishes(
            within: 5,
            unblock: { [layout] in
                let moved = ((try? FileManager.default.subpathsOfDirectory(atPath: layout.root.path)) ?? [])
                    .filter { $0.hasSuffix("teacher.safetensors") }
                    .map { layout.root.path + "/" + $0 }
                for path in [fifo.path] + moved { _ = open(path, O_WRONLY | O_NONBLOCK) }
            }
        ) {
            scan = try self.spool.scanIncoming()
        }
        XCTAssertEqual(scan.entries, [])
        XCTAssertEqual(scan.refused.count, 2)
        XCTAssertEqual(names(layout.incoming), [])
        for refused in scan.refused {
            let failed = layout.failedDirectory(refused.job)
            let error = try jsonObject(failed.appendingPathComponent("error.json"))
            XCTAssertEqual(error["kind"] as? String, "special-file")
            if refused.name == "pipe.safetensors" {
                XCTAssertEqual(kind(failed.appendingPathComponent("teacher.safetensors")), .fifo)
                XCTAssertTrue((error["what"] as? String)?.contains("a FIFO") == true)
            } else {
                XCTAssertEqual(names(failed.appendingPathComponent("teacher")), ["inside.safetensors"], "moved whole")
                XCTAssertTrue((error["what"] as? String)?.contains("a directory") == true)
            }
        }
    }
}
