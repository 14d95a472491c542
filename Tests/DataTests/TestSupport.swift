import Data
import Foundation
import XCTest

/// The committed fixtures directory (copies of shared/data/digits and cifar10-sample, plus gz).
func fixturesDir() -> String {
    guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
        fatalError("DataTests: Fixtures resource missing from the test bundle")
    }
    return url.path
}

/// Path of a fixture file.
func fixture(_ name: String) -> String { fixturesDir() + "/" + name }

/// Bytes of a fixture file.
func fixtureBytes(_ name: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture(name))))
}

/// A fresh temporary directory, removed when the test ends.
func makeTempDir(_ test: XCTestCase) throws -> String {
    let dir = NSTemporaryDirectory() + "rrmd-data-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    return dir
}

/// Writes `bytes` to `dir/name` and returns the path.
@discardableResult
func write(_ bytes: [UInt8], _ dir: String, _ name: String) throws -> String {
    let path = dir + "/" + name
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

/// A big-endian UInt32.
func be32(_ v: Int) -> [UInt8] {
    [
        UInt8(truncatingIfNeeded: v >> 24), UInt8(truncatingIfNeeded: v >> 16),
        UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v),
    ]
}

/// An IDX unsigned-byte header for `dims`.
func idxHeader(_ dims: [Int], type: UInt8 = 0x08) -> [UInt8] {
    [0, 0, type, UInt8(dims.count)] + dims.flatMap(be32)
}

/// Asserts `body` throws a `DataError` accepted by `matches`, and that its message names `path`.
func assertDataError<T>(
    _ body: @autoclosure () throws -> T, mentioning path: String? = nil,
    file: StaticString = #filePath, line: UInt = #line, _ matches: (DataError) -> Bool
) {
    do {
        _ = try body()
        XCTFail("expected a DataError, got success", file: file, line: line)
    } catch let error as DataError {
        XCTAssertTrue(matches(error), "unexpected error: \(error)", file: file, line: line)
        if let path {
            XCTAssertTrue(
                error.description.contains(path), "message does not name \(path): \(error)",
                file: file, line: line)
        }
    } catch {
        XCTFail("expected a DataError, got \(error)", file: file, line: line)
    }
}

/// CRC-32 (IEEE), as the gzip trailer needs.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
    }
    return ~crc
}

/// A valid one-member gzip file holding `bytes` in stored (uncompressed) deflate blocks, so
/// tests can make gzip content of any shape without a compressor.
func gzipStored(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF]
    var at = 0
    repeat {
        let n = min(65535, bytes.count - at)
        let final: UInt8 = at + n == bytes.count ? 1 : 0
        out += [final, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
        out += bytes[at..<(at + n)]
        at += n
    } while at < bytes.count
    let le32 = { (v: UInt32) in [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)] }
    return out + le32(crc32(bytes)) + le32(UInt32(truncatingIfNeeded: bytes.count))
}
