import FileSystem
import Foundation
import XCTest

@testable import Spool

#if canImport(Glibc)
import Glibc
#endif

final class LayoutTests: SpoolTestCase {
    func testCreateMakesEveryStateDirectoryWithMode0750() throws {
        let root = base.appendingPathComponent("a/b/spool")
        let fresh = SpoolLayout(root: root)
        try fresh.create()
        try fresh.create()  // twice is fine
        XCTAssertEqual(names(root), ["done", "failed", "incoming", "tmp", "work"])
        for directory in [fresh.root, fresh.tmp, fresh.incoming, fresh.work, fresh.done, fresh.failed] {
            var st = stat()
            XCTAssertEqual(lstat(directory.path, &st), 0)
            XCTAssertEqual(st.st_mode & 0o777, 0o750 & ~0o022, directory.path)  // 0750 under the usual umask
        }
        XCTAssertEqual(fresh.statusFile.lastPathComponent, "status.json")
        XCTAssertEqual(
            fresh.workDirectory(JobID("20261202-214900-3f9a1c2b")!).path, root.path + "/work/20261202-214900-3f9a1c2b")
    }

    func testCreateRefusesAFileWhereADirectoryBelongs() throws {
        let root = base.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try write([1], to: root.appendingPathComponent("incoming"))
        XCTAssertThrowsError(try SpoolLayout(root: root).create()) { error in
            XCTAssertEqual((error as? FileSystemError)?.errno, EEXIST)
            XCTAssertTrue("\(error)".contains("incoming"), "\(error)")
        }
    }

    func testJobIDFormatOrderAndParsing() throws {
        let date = Date(timeIntervalSince1970: 1_796_248_140)  // 2026-12-02 21:49:00 UTC
        let id = JobID(date: date, random: 0x3f9a_1c2b)
        XCTAssertEqual(id.rawValue, "20261202-214900-3f9a1c2b")
        XCTAssertEqual(id.date, date)
        XCTAssertEqual(JobID("20261202-214900-3f9a1c2b"), id)
        XCTAssertEqual(JobID(date: date.addingTimeInterval(1), random: 0).rawValue, "20261202-214901-00000000")
        XCTAssertLessThan(id, JobID(date: date.addingTimeInterval(1), random: 0))
        for bad in [
            "", "20261202-214900-3f9a1c2", "20261202-214900-3F9A1C2B", "20261302-214900-3f9a1c2b",
            "20260231-214900-3f9a1c2b", "20261202-246000-3f9a1c2b", "20261202_214900-3f9a1c2b",
            "../../etc/passwd-xxxxxxxx",
        ] {
            XCTAssertNil(JobID(bad), bad)
        }
        XCTAssertEqual(JobID(prefixOf: "20261202-214900-3f9a1c2b--a.safetensors"), id)
        XCTAssertEqual(JobID(prefixOf: "20261202-214900-3f9a1c2b.safetensors"), id)
        XCTAssertNil(JobID(prefixOf: "20261202-214900-3f9a1c2bx.safetensors"))
        let encoded = try JSONEncoder().encode([id])
        XCTAssertEqual(String(decoding: encoded, as: UTF8.self), "[\"20261202-214900-3f9a1c2b\"]")
        XCTAssertEqual(try JSONDecoder().decode([JobID].self, from: encoded), [id])
        XCTAssertThrowsError(try JSONDecoder().decode([JobID].self, from: Data("[\"nope\"]".utf8)))
        // Fresh ids are unique and sort by time.
        let fresh = (0..<1000).map { _ in JobID() }
        XCTAssertEqual(Set(fresh).count, 1000)
        XCTAssertTrue(fresh.allSatisfy { abs($0.date.timeIntervalSinceNow) < 5 })
    }

    func testNames() {
        XCTAssertEqual(SpoolNames.teacherName(for: "robust.safetensors.zst"), "teacher.safetensors.zst")
        XCTAssertEqual(SpoolNames.teacherName(for: "robust.v2.safetensors"), "teacher.safetensors")
        XCTAssertEqual(SpoolNames.teacherName(for: "model.pt.gz"), "teacher.pt.gz")
        XCTAssertEqual(SpoolNames.teacherName(for: "model.zst"), "teacher.zst")
        XCTAssertEqual(SpoolNames.teacherName(for: "model"), "teacher")
        XCTAssertEqual(SpoolNames.teacherName(for: "model.we ird"), "teacher")
        for ignored in [".hidden", ".x.safetensors", "copy.tmp", "upload.part", ".status.json.1f.tmp"] {
            XCTAssertTrue(SpoolNames.isIgnored(ignored), ignored)
        }
        XCTAssertFalse(SpoolNames.isIgnored("robust.safetensors"))
        let id = JobID("20261202-214900-3f9a1c2b")!
        XCTAssertTrue(
            SpoolNames.parseIncoming("20261202-214900-3f9a1c2b--my model.safetensors") == (id, "my model.safetensors"))
        XCTAssertTrue(
            SpoolNames.parseIncoming("20261202-214900-3f9a1c2b.safetensors") == (
                id, "20261202-214900-3f9a1c2b.safetensors"
            ))
        XCTAssertTrue(SpoolNames.parseIncoming("hand.safetensors") == (nil, "hand.safetensors"))
        let long = String(repeating: "x", count: 400) + ".safetensors.zst"
        let kept = SpoolNames.sanitized(long)
        XCTAssertEqual(kept.utf8.count, SpoolNames.maxOriginalNameBytes)
        XCTAssertTrue(kept.hasSuffix(".safetensors.zst"))
        XCTAssertEqual(SpoolNames.sanitized("a\nb\u{7}.safetensors"), "a_b_.safetensors")
    }
}
