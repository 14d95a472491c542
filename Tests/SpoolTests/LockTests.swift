import FileSystem
import Foundation
import XCTest

@testable import Spool

#if canImport(Glibc)
import Glibc
#endif

final class LockTests: SpoolTestCase {
    func testASecondHolderIsRefusedUntilTheFirstReleases() throws {
        let first = try spool.lock()
        XCTAssertThrowsError(try Spool(layout: layout).lock()) { error in
            XCTAssertEqual(error as? SpoolError, .busy(path: layout.root.path + "/.lock", pid: getpid()))
            XCTAssertNil(
                error as? FileSystemError, "a held lock is the spool's own refusal, not a failed system call to retry")
        }
        first.release()
        let second = try spool.lock()
        second.release()
    }
}
