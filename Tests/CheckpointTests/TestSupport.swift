import Checkpoint
import Foundation
import TensorCore
import XCTest

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
func assertRejects(
    _ bytes: [UInt8], _ what: String, file: StaticString = #filePath, line: UInt = #line,
    _ matches: (CheckpointError) -> Bool
) {
    do {
        _ = try SafeTensors(bytes: bytes, source: "test.safetensors")
        XCTFail("\(what): expected an error, parsing succeeded", file: file, line: line)
    } catch let error as CheckpointError {
        XCTAssertTrue(matches(error), "\(what): unexpected error \(error)", file: file, line: line)
        XCTAssertTrue(
            error.description.contains("test.safetensors"), "\(what): message lacks the source: \(error)", file: file,
            line: line)
    } catch {
        XCTFail("\(what): untyped error \(error)", file: file, line: line)
    }
}

/// A deterministic generator (SplitMix64) so randomised tests replay exactly from their seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A small checkpoint like the ones rrmd writes: F32 weights of `floats` random elements (an
/// incompressible payload, as trained weights are), BatchNorm buffers, an I64 counter, metadata.
func sampleCheckpoint(floats: Int = 1000, seed: UInt64 = 1) -> SafeTensors {
    var rng = SplitMix64(seed: seed)
    var archive = SafeTensors(metadata: ["rrm.arch": "resnet20", "rrm.seed": "\(seed)", "rrm.mean": "0.49,0.48,0.45"])
    archive["conv1.weight"] = .float32(
        Tensor(shape: [floats], data: (0..<floats).map { _ in Float.random(in: -1...1, using: &rng) }))
    archive["bn1.running_mean"] = .float32(Tensor(shape: [16], repeating: 0))
    archive["bn1.running_var"] = .float32(Tensor(shape: [16], repeating: 1))
    archive["bn1.num_batches_tracked"] = .int64(shape: [], values: [391])
    archive["fc.bias"] = .float32(Tensor(shape: [10], data: (0..<10).map { Float($0) / 10 }))
    return archive
}

/// A hand-made zstd frame of `blocks` RLE blocks of 128 KiB zeros each (4 bytes per block, so
/// 1 GiB fits in 32 KiB): a decompression bomb that does not depend on our compressor.
/// `contentSize` nil omits the size from the header, as a streaming compressor does; `windowLog`
/// is what the frame asks the decoder to allocate.
func zeroBombFrame(blocks: Int, contentSize: UInt64? = nil, windowLog: Int = 20, prefix: [UInt8] = []) -> [UInt8] {
    // Frame header descriptor: bits 7-6 = 3 means an 8-byte content size; no single-segment,
    // checksum or dictionary flag, so a window descriptor byte follows.
    var out: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, contentSize == nil ? 0x00 : 0xC0, UInt8((windowLog - 10) << 3)]
    if let contentSize { withUnsafeBytes(of: contentSize.littleEndian) { out += $0 } }
    precondition(blocks >= 1 && prefix.count < 128 << 10)
    if !prefix.isEmpty {
        // A raw block (type 0) carrying `prefix` as it is: the content starts with it.
        let header = UInt32(prefix.count << 3)
        out += [UInt8(header & 0xFF), UInt8((header >> 8) & 0xFF), UInt8(header >> 16)] + prefix
    }
    let blockSize = 128 << 10
    for b in 0..<blocks {
        // Block header, 3 bytes little-endian: last-block bit, type 1 (RLE), size << 3; then the byte.
        let header = UInt32(blockSize << 3) | (1 << 1) | (b == blocks - 1 ? 1 : 0)
        out += [UInt8(header & 0xFF), UInt8((header >> 8) & 0xFF), UInt8(header >> 16), 0]
    }
    return out
}

/// Asserts that reading `bytes` with `limits` throws a `CheckpointError` accepted by `matches`,
/// with a message naming the source.
func assertRejects(
    _ bytes: [UInt8], limits: ReadLimits, _ what: String, file: StaticString = #filePath, line: UInt = #line,
    _ matches: (CheckpointError) -> Bool
) {
    do {
        _ = try SafeTensors(bytes: bytes, source: "test.safetensors.zst", limits: limits)
        XCTFail("\(what): expected an error, parsing succeeded", file: file, line: line)
    } catch let error as CheckpointError {
        XCTAssertTrue(matches(error), "\(what): unexpected error \(error)", file: file, line: line)
        XCTAssertTrue(
            error.description.contains("test.safetensors.zst"), "\(what): message lacks the source: \(error)",
            file: file, line: line)
    } catch {
        XCTFail("\(what): untyped error \(error)", file: file, line: line)
    }
}

/// The `zstd` command-line tool, if installed.
func zstdTool() -> String? {
    ["/usr/bin/zstd", "/usr/local/bin/zstd", "/bin/zstd", "/opt/homebrew/bin/zstd"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
}

/// Runs `tool` with `arguments`, stdin from `input` if given; returns the exit status.
func runTool(
    _ tool: String, _ arguments: [String], stdin input: String? = nil, stdout output: String? = nil
) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    if let input { process.standardInput = FileHandle(forReadingAtPath: input) }
    if let output {
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: output)
    }
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

/// `content` framed by hand as one zstd frame of raw (stored) blocks, with its size declared and
/// no checksum: a valid frame around arbitrary bytes, independent of our compressor.
func rawBlockFrame(_ content: [UInt8]) -> [UInt8] {
    // Descriptor 0xE0: 8-byte content size, single segment (no window byte), no checksum.
    var out: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0xE0]
    withUnsafeBytes(of: UInt64(content.count).littleEndian) { out += $0 }
    let blockSize = 128 << 10
    var start = 0
    repeat {
        let end = min(content.count, start + blockSize)
        let header = UInt32((end - start) << 3) | (end == content.count ? 1 : 0)  // type 0: raw
        out += [UInt8(header & 0xFF), UInt8((header >> 8) & 0xFF), UInt8(header >> 16)]
        out += content[start..<end]
        start = end
    } while start < content.count
    return out
}
