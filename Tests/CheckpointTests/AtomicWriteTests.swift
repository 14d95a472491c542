import Checkpoint
import FileSystem
import Foundation
import TensorCore
import TestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class AtomicWriteTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Names in the test directory other than `expected`, e.g. leftover temporary files.
    func strayFiles(besides expected: Set<String>) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { !expected.contains($0) }
    }

    func testWritesContentAndLeavesNoTemporaryFile() throws {
        let target = directory.appendingPathComponent("model.safetensors")
        let bytes = [UInt8](0..<200)
        try writeAtomically(bytes, to: target)
        XCTAssertEqual([UInt8](try Data(contentsOf: target)), bytes)
        XCTAssertEqual(try strayFiles(besides: ["model.safetensors"]), [])
    }

    func testReplacesExistingFile() throws {
        let target = directory.appendingPathComponent("model.safetensors").path
        try writeAtomically(Array(repeating: 7, count: 4096), toFile: target)
        try writeAtomically([1, 2, 3], toFile: target)
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: target))), [1, 2, 3])
        try writeAtomically([], toFile: target)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: target)).count, 0)
        XCTAssertEqual(try strayFiles(besides: ["model.safetensors"]), [])
    }

    func testMissingDirectoryIsATypedError() throws {
        let target = directory.appendingPathComponent("no-such-dir/model.safetensors").path
        XCTAssertThrowsError(try writeAtomically([1], toFile: target)) { error in
            guard case .system(_, let path, let code)? = error as? FileSystemError else { return XCTFail("\(error)") }
            XCTAssertEqual(code, ENOENT)
            XCTAssertTrue(path.contains("no-such-dir"))
            XCTAssertTrue("\(error)".contains("No such file or directory"), "\(error)")
        }
        XCTAssertEqual(try strayFiles(besides: []), [])
    }

    func testRenameFailureRemovesTemporaryFile() throws {
        // A directory in the target's place makes rename(2) fail after the temp file is written.
        let target = directory.appendingPathComponent("occupied")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: false)
        try FileManager.default.createDirectory(
            at: target.appendingPathComponent("child"), withIntermediateDirectories: false)
        XCTAssertThrowsError(try writeAtomically([1, 2], to: target)) { error in
            guard case .system(let operation, _, _)? = error as? FileSystemError else { return XCTFail("\(error)") }
            XCTAssertTrue(operation.hasPrefix("rename"), operation)
        }
        XCTAssertEqual(try strayFiles(besides: ["occupied"]), [])
    }

    func testArchiveFileRoundTrip() throws {
        var archive = SafeTensors(metadata: ["rrm.arch": "tiny"])
        archive["w"] = .float32(Tensor(shape: [2, 2], data: [1, 2, 3, 4]))
        archive["bn.num_batches_tracked"] = .int64(shape: [], values: [9])
        let url = directory.appendingPathComponent("tiny.safetensors")
        try archive.write(to: url)
        let read = try SafeTensors(contentsOf: url)
        XCTAssertEqual(try read.float32("w", shape: [2, 2]).array, [1, 2, 3, 4])
        XCTAssertEqual(try read.int64("bn.num_batches_tracked").values, [9])
        XCTAssertEqual(read.metadata, ["rrm.arch": "tiny"])
        XCTAssertEqual([UInt8](try Data(contentsOf: url)), archive.serialized())
        XCTAssertEqual(try strayFiles(besides: ["tiny.safetensors"]), [])
    }

    func testReadingAMissingFileIsATypedError() {
        let path = directory.appendingPathComponent("absent.safetensors").path
        XCTAssertThrowsError(try SafeTensors(contentsOfFile: path)) { error in
            XCTAssertEqual(error as? FileSystemError, .system(operation: "open", path: path, errno: ENOENT))
        }
        XCTAssertThrowsError(try SafeTensors(contentsOfFile: directory.path)) { error in
            guard case .system(_, _, EISDIR)? = error as? FileSystemError else { return XCTFail("\(error)") }
        }
    }

    func testReadingACorruptFileNamesTheFile() throws {
        let path = directory.appendingPathComponent("bad.safetensors").path
        try writeAtomically([1, 2, 3], toFile: path)
        XCTAssertThrowsError(try SafeTensors(contentsOfFile: path)) { error in
            XCTAssertEqual(error as? CheckpointError, .truncated(source: path, size: 3))
            XCTAssertTrue("\(error)".contains(path))
        }
    }
}
