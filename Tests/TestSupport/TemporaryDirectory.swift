import Foundation
import XCTest

/// A fresh empty directory under the system's temporary directory, named `rrmd-<label>-<uuid>`;
/// with `test`, removed when that test ends.
public func makeTemporaryDirectory(_ label: String = "tests", removedAfter test: XCTestCase? = nil) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
        "rrmd-\(label)-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test?.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}
