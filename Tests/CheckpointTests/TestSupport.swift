import Foundation
import XCTest
import Checkpoint

/// A safetensors file whose header is `json` (padded with spaces to 8 bytes unless `pad` is
/// false) followed by `data`, for hand-crafting valid and invalid inputs.
func makeFile(_ json: String, data: [UInt8] = [], pad: Bool = true) -> [UInt8] {
    var header = Array(json.utf8)
    if pad { header += repeatElement(0x20, count: (8 - header.count % 8) % 8) }
    return makeFile(headerBytes: header, data: data)
}

/// A file with raw header bytes, for headers that are not valid UTF-8.
func makeFile(headerBytes header: [UInt8], data: [UInt8] = []) -> [UInt8] {
    var out: [UInt8] = []
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { out += $0 }
    return out + header + data
}

/// The header JSON text of a serialised file, padding included.
func headerText(_ file: [UInt8]) -> String {
    var n = 0
    for k in 0..<8 { n |= Int(file[k]) << (8 * k) }
    return String(decoding: file[8..<(8 + n)], as: UTF8.self)
}

/// Decodes a base64 fixture embedded in a test.
func base64Bytes(_ text: String) -> [UInt8] {
    [UInt8](Data(base64Encoded: text)!)
}

/// Asserts that parsing `bytes` throws a `CheckpointError` accepted by `matches`, and that its
/// description is a useful sentence naming the source.
func assertRejects(_ bytes: [UInt8], _ what: String, file: StaticString = #filePath, line: UInt = #line,
                   _ matches: (CheckpointError) -> Bool) {
    do {
        _ = try SafeTensors(bytes: bytes, source: "test.safetensors")
        XCTFail("\(what): expected an error, parsing succeeded", file: file, line: line)
    } catch let error as CheckpointError {
        XCTAssertTrue(matches(error), "\(what): unexpected error \(error)", file: file, line: line)
        XCTAssertTrue(error.description.contains("test.safetensors"), "\(what): message lacks the source: \(error)", file: file, line: line)
    } catch {
        XCTFail("\(what): untyped error \(error)", file: file, line: line)
    }
}

/// A fresh empty directory under the system temporary directory.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("rrmd-ckpt-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
