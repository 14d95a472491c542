import Foundation
import XCTest
@testable import Spool
#if canImport(Glibc)
import Glibc
#endif

final class ErrorTests: XCTestCase {
    func testTransientClassification() {
        for code in [ENOSPC, EDQUOT, EACCES, EPERM, EROFS, EMFILE, ENFILE, EIO] {
            XCTAssertTrue(SpoolError.isTransient(errno: code), "\(code)")
            XCTAssertTrue(SpoolError.system(operation: "rename", path: "/s/incoming/a", errno: code).isTransient)
        }
        for code in [ENOENT, EEXIST, EXDEV, ELOOP, ENOTDIR, EINVAL] {
            XCTAssertFalse(SpoolError.isTransient(errno: code), "\(code)")
        }
        XCTAssertFalse(SpoolError.damagedRecord(path: "p", reason: "r").isTransient)
        XCTAssertFalse(SpoolError.notRegularFile(path: "p", kind: "a FIFO (named pipe)").isTransient)
        XCTAssertEqual(SpoolError.system(operation: "fsync", path: "p", errno: EIO).errno, EIO)
        XCTAssertNil(SpoolError.missing(path: "p", reason: "r").errno)
    }

    func testMessagesSayWhatWhereAndWhatToDo() {
        let full = SpoolError.system(operation: "rename to /s/work/x/teacher", path: "/s/incoming/a", errno: ENOSPC).description
        XCTAssertTrue(full.hasPrefix("/s/incoming/a: rename to /s/work/x/teacher failed: No space left on device (errno \(ENOSPC)); free space"), full)
        XCTAssertTrue(SpoolError.system(operation: "rename", path: "p", errno: EXDEV).description.contains("one filesystem"))
        XCTAssertTrue(SpoolError.system(operation: "create", path: "p", errno: EROFS).description.contains("ReadWritePaths="))
        let refused = SpoolError.refused(RefusedEntry(job: JobID("20261202-214900-3f9a1c2b")!, name: "x",
                                                      failure: SpoolFailure(kind: "special-file", what: "it is a FIFO", whereText: "incoming/x", whatToDo: "submit a file")))
        XCTAssertEqual(refused.description, "incoming/x: it is a FIFO; moved to failed/20261202-214900-3f9a1c2b; submit a file")
    }
}
