import FileSystem
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The one errno-carrying error: which failures are worth a retry, and messages that say what,
/// where and what to do.
final class FileSystemErrorTests: XCTestCase {
    func testTransientClassification() {
        for code in [ENOSPC, EDQUOT, EACCES, EPERM, EROFS, EMFILE, ENFILE, EIO] {
            XCTAssertTrue(FileSystemError.isTransient(errno: code), "\(code)")
            XCTAssertTrue(FileSystemError.system(operation: "rename", path: "/s/incoming/a", errno: code).isTransient)
        }
        for code in [ENOENT, EEXIST, EXDEV, ELOOP, ENOTDIR, EINVAL] {
            XCTAssertFalse(FileSystemError.isTransient(errno: code), "\(code)")
        }
        XCTAssertFalse(FileSystemError.tooLarge(path: "p", size: 10, limit: 5).isTransient)
        XCTAssertFalse(FileSystemError.notRegularFile(path: "p", kind: "a FIFO (named pipe)").isTransient)
        XCTAssertEqual(FileSystemError.system(operation: "fsync", path: "p", errno: EIO).errno, EIO)
        XCTAssertNil(FileSystemError.tooLarge(path: "p", size: 10, limit: 5).errno)
    }

    func testMessagesSayWhatWhereAndWhatToDo() {
        let full = FileSystemError.system(
            operation: "rename to /s/work/x/teacher", path: "/s/incoming/a", errno: ENOSPC
        ).description
        XCTAssertTrue(
            full.hasPrefix(
                "/s/incoming/a: rename to /s/work/x/teacher failed: No space left on device (errno \(ENOSPC)); free "
                    + "space"
            ), full)
        XCTAssertTrue(
            FileSystemError.system(operation: "rename", path: "p", errno: EXDEV).description.contains("one filesystem"))
        XCTAssertTrue(
            FileSystemError.system(operation: "create", path: "p", errno: EROFS).description.contains("ReadWritePaths=")
        )
    }
}
