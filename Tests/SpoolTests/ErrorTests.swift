import Foundation
import XCTest

@testable import Spool

#if canImport(Glibc)
import Glibc
#endif

final class ErrorTests: XCTestCase {
    func testMessagesSayWhatWhereAndWhatToDo() {
        let refused = SpoolError.refused(
            RefusedEntry(
                job: JobID("20261202-214900-3f9a1c2b")!, name: "x",
                failure: SpoolFailure(
                    kind: "special-file", what: "it is a FIFO", whereText: "incoming/x", whatToDo: "submit a file")))
        XCTAssertEqual(
            refused.description, "incoming/x: it is a FIFO; moved to failed/20261202-214900-3f9a1c2b; submit a file")
    }
}
