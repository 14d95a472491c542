import FileSystem
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `readWholeFile`: the bound is enforced before reading, and `regularOnly` refuses links and
/// special files without opening them for reading (a FIFO would block the caller).
final class WholeFileTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("rrmd-fs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func testReadsWholeFilesAndRefusesLargerOnes() throws {
        let path = directory.appendingPathComponent("a").path
        try writeAtomically([UInt8](repeating: 7, count: 1000), toFile: path)
        XCTAssertEqual(try readWholeFile(path), [UInt8](repeating: 7, count: 1000))
        XCTAssertEqual(try readWholeFile(path, limit: 1000).count, 1000)
        XCTAssertThrowsError(try readWholeFile(path, limit: 999)) { error in
            XCTAssertEqual(error as? FileSystemError, .tooLarge(path: path, size: 1000, limit: 999))
        }
        XCTAssertThrowsError(try readWholeFile(directory.appendingPathComponent("missing").path)) { error in
            XCTAssertEqual((error as? FileSystemError)?.errno, ENOENT)
        }
    }

    func testRegularOnlyRefusesLinksAndSpecialFiles() throws {
        let target = directory.appendingPathComponent("target").path
        try writeAtomically(Array("x".utf8), toFile: target)
        let link = directory.appendingPathComponent("link").path
        XCTAssertEqual(symlink(target, link), 0)
        XCTAssertEqual(try readWholeFile(link), Array("x".utf8), "links are followed unless regularOnly")
        XCTAssertThrowsError(try readWholeFile(link, regularOnly: true)) { error in
            XCTAssertEqual((error as? FileSystemError)?.errno, ELOOP)
        }
        let fifo = directory.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertThrowsError(try readWholeFile(fifo, regularOnly: true)) { error in
            XCTAssertEqual(error as? FileSystemError, .notRegularFile(path: fifo, kind: "a FIFO (named pipe)"))
        }
    }

    func testSHA256OfAFileIsItsContentsDigest() throws {
        let path = directory.appendingPathComponent("h").path
        let bytes = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try writeAtomically(bytes, toFile: path)
        XCTAssertEqual(try SHA256.hex(contentsOfFile: path), SHA256.hex(Data(bytes)))
        XCTAssertThrowsError(try SHA256.hex(contentsOfFile: directory.appendingPathComponent("missing").path)) {
            error in
            XCTAssertEqual((error as? FileSystemError)?.errno, ENOENT)
        }
    }
}
