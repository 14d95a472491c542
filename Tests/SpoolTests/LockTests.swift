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
            XCTAssertFalse((error as? SpoolError)?.isTransient ?? true)
        }
        first.release()
        let second = try spool.lock()
        second.release()
    }
}
