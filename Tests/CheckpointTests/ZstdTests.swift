import Foundation
import TensorCore
import TestSupport
import XCTest

@testable import Checkpoint

/// `.safetensors.zst`: the frame we write, detection by content, and every refusal of a hostile
/// or damaged frame as a typed error, in bounded time and memory.
final class ZstdTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func testRoundTripAndFrameLayout() throws {
        let archive = sampleCheckpoint()
        let plain = archive.serialized()
        XCTAssertEqual(try archive.serialized(compression: .none), plain)
        for level in [-5, 1, 3, 19] {
            let packed = try archive.serialized(compression: .zstd(level: level))
            XCTAssertEqual(Array(packed.prefix(4)), [0x28, 0xB5, 0x2F, 0xFD], "level \(level)")
            // Frame header descriptor: content size present (a size-field flag or the
            // single-segment bit, which implies it) and the checksum flag.
            let descriptor = packed[4]
            XCTAssertTrue(descriptor & 0xC0 != 0 || descriptor & 0x20 != 0, "level \(level): no content size")
            XCTAssertEqual(descriptor & 0x04, 0x04, "level \(level): no checksum flag")
            let read = try SafeTensors(bytes: packed)
            XCTAssertEqual(read.serialized(), plain, "level \(level)")
            XCTAssertEqual(read.metadata, archive.metadata)
            XCTAssertEqual(try read.int64("bn1.num_batches_tracked").values, [391])
        }
    }

    func testDefaultLevelIsTheDocumentedOne() {
        XCTAssertEqual(SafeTensors.Compression.zstd(), .zstd(level: SafeTensors.Compression.defaultZstdLevel))
    }

    func testFilesAreRecognisedByContentNotName() throws {
        let archive = sampleCheckpoint()
        let misnamedCompressed = directory.appendingPathComponent("a.safetensors").path
        let misnamedPlain = directory.appendingPathComponent("b.safetensors.zst")
        try archive.write(toFile: misnamedCompressed, compression: .zstd())
        try archive.write(to: misnamedPlain)
        XCTAssertEqual(
            [UInt8](try Data(contentsOf: URL(fileURLWithPath: misnamedCompressed)).prefix(4)), [0x28, 0xB5, 0x2F, 0xFD])
        XCTAssertEqual(try SafeTensors(contentsOfFile: misnamedCompressed).serialized(), archive.serialized())
        XCTAssertEqual(try SafeTensors(contentsOf: misnamedPlain).serialized(), archive.serialized())
        XCTAssertEqual(
            try SafeTensors(data: Data(archive.serialized(compression: .zstd()))).serialized(), archive.serialized())
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted(),
            ["a.safetensors", "b.safetensors.zst"])
    }

    func testZstdToolRestoresThePlainFileAndWeReadItsOutput() throws {
        guard let zstd = zstdTool() else { throw XCTSkip("the zstd command-line tool is not installed") }
        let archive = sampleCheckpoint(floats: 50_000)
        let packed = directory.appendingPathComponent("m.safetensors.zst").path
        let unpacked = directory.appendingPathComponent("m.safetensors").path
        try archive.write(toFile: packed, compression: .zstd())
        XCTAssertEqual(try runTool(zstd, ["-q", "-d", "-f", packed, "-o", unpacked]), 0)
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: unpacked))), archive.serialized())
        // `zstd -t` also verifies the checksum.
        XCTAssertEqual(try runTool(zstd, ["-q", "-t", packed]), 0)

        // Through a pipe zstd cannot know the size, so the frame has none: the streaming path.
        let piped = directory.appendingPathComponent("p.safetensors.zst").path
        XCTAssertEqual(try runTool(zstd, ["-q", "-c", "-19"], stdin: unpacked, stdout: piped), 0)
        let pipedBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: piped)))
        XCTAssertEqual(pipedBytes[4] & 0xE0, 0, "expected a frame without content size")
        XCTAssertEqual(try SafeTensors(contentsOfFile: piped).serialized(), archive.serialized())
        // ...which the output cap still bounds.
        let plainSize = archive.serialized().count
        assertRejects(pipedBytes, limits: ReadLimits(maxContentSize: plainSize - 1), "unsized over the cap") {
            if case .decompressedTooLarge(_, nil, plainSize - 1) = $0 { return true }
            return false
        }
        XCTAssertNoThrow(try SafeTensors(bytes: pipedBytes, limits: ReadLimits(maxContentSize: plainSize)))
    }

    func testDeclaredContentSizeOverTheCapIsRefusedUpFront() throws {
        let archive = sampleCheckpoint()
        let size = archive.serialized().count
        let packed = try archive.serialized(compression: .zstd())
        assertRejects(packed, limits: ReadLimits(maxContentSize: size - 1), "one byte over") {
            if case .decompressedTooLarge(_, UInt64(size)?, size - 1) = $0 { return true }
            return false
        }
        XCTAssertNoThrow(try SafeTensors(bytes: packed, limits: ReadLimits(maxContentSize: size)))

        // A frame claiming 1 TiB under the default 4 GiB cap: refused from its header alone.
        let start = Date()
        assertRejects(zeroBombFrame(blocks: 1, contentSize: 1 << 40), limits: .standard, "1 TiB declared") {
            if case .decompressedTooLarge(_, (1 << 40)?, 4 << 30) = $0 { return true }
            return false
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
    }

    func testBombsAreRefusedAsSoonAsTheirHeaderIs() throws {
        // The hand-made frame is valid zstd: a small one decodes (to zeros, which fail as
        // safetensors because the header length is 0).
        assertRejects(zeroBombFrame(blocks: 8), limits: ReadLimits(maxContentSize: 1 << 20), "1 MiB of zeros") {
            if case .invalidHeader = $0 { return true }
            return false
        }
        // 1 GiB of zeros in 32 KiB, under the default 4 GiB cap: the empty header in its first
        // bytes is invalid, so decoding stops after the first chunk instead of inflating it all.
        let bomb = zeroBombFrame(blocks: 8192)
        XCTAssertLessThan(bomb.count, 40_000)
        var start = Date()
        assertRejects(bomb, limits: .standard, "1 GiB of zeros") {
            if case .invalidHeader = $0 { return true }
            return false
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2, "the bomb was not stopped early")

        // A valid checkpoint followed by 1 GiB of zeros: stopped just past the size its own
        // header declares, with a message saying so.
        let valid = sampleCheckpoint().serialized()
        start = Date()
        assertRejects(zeroBombFrame(blocks: 8192, prefix: valid), limits: .standard, "valid header, then 1 GiB") {
            if case .contentBeyondHeader(_, valid.count) = $0 {
                return $0.description.contains("its own safetensors header declares")
            }
            return false
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2, "the bomb was not stopped at its header's size")
        // The same valid checkpoint alone, through the same raw-block framing, reads back.
        let plainFrame = zeroBombFrame(blocks: 1, prefix: valid)
        XCTAssertThrowsError(try SafeTensors(bytes: plainFrame), "128 KiB of zeros after the data are still too many")
    }

    func testContentCapHoldsWithoutAHeaderCheck() throws {
        // The decoder's own cap, for content that says nothing of its size: 1 GiB of zeros
        // against a 1 MiB cap stops after about 1 MiB of output.
        let bomb = zeroBombFrame(blocks: 8192)
        let start = Date()
        XCTAssertThrowsError(try Zstd.decompress(bomb, limits: ReadLimits(maxContentSize: 1 << 20), source: "b")) {
            error in
            guard case .decompressedTooLarge(_, nil, 1 << 20)? = error as? CheckpointError else {
                return XCTFail("\(error)")
            }
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
    }

    func testWindowOverTheCapIsRefused() throws {
        // A 2 GiB window would make the decoder allocate 2 GiB before producing anything.
        assertRejects(zeroBombFrame(blocks: 1, windowLog: 31), limits: .standard, "2 GiB window") {
            if case .zstdWindowTooLarge(_, 1 << 31, 1 << 27) = $0 { return true }
            return false
        }
        // Our own frames are single-segment when small: the window is the content size.
        let packed = try sampleCheckpoint().serialized(compression: .zstd())
        assertRejects(packed, limits: ReadLimits(maxWindowLog: 10), "1 KiB window cap") {
            if case .zstdWindowTooLarge(_, _, 1024) = $0 { return true }
            return false
        }
    }

    func testTruncatedFrameIsReportedAsTruncated() throws {
        let packed = try sampleCheckpoint(floats: 300).serialized(compression: .zstd())
        for length in 4..<packed.count {
            assertRejects(Array(packed.prefix(length)), limits: .standard, "cut at \(length) of \(packed.count)") {
                if case .zstdTruncated(_, length) = $0 { return $0.description.contains("copy the file again") }
                return false
            }
        }
    }

    func testChecksumMismatchIsReported() throws {
        let packed = try sampleCheckpoint().serialized(compression: .zstd())
        var badSum = packed
        badSum[badSum.count - 1] ^= 0x01  // the last 4 bytes are the checksum
        assertRejects(badSum, limits: .standard, "checksum byte") {
            if case .zstdChecksumMismatch = $0 { return $0.description.contains("checksum") }
            return false
        }
        // Random floats do not compress, so libzstd stores them in raw blocks: a flipped byte
        // there decodes fine and only the checksum can tell.
        var badData = packed
        badData[packed.count / 2] ^= 0x10
        assertRejects(badData, limits: .standard, "payload byte") {
            if case .zstdChecksumMismatch = $0 { return true }
            return false
        }
    }

    func testTrailingDataAndSecondFramesAreRefused() throws {
        let packed = try sampleCheckpoint().serialized(compression: .zstd())
        assertRejects(packed + [0], limits: .standard, "one trailing byte") {
            if case .zstdTrailingData(_, packed.count, 1) = $0 { return true }
            return false
        }
        assertRejects(packed + packed, limits: .standard, "two frames") {
            if case .zstdTrailingData(_, packed.count, packed.count) = $0 { return true }
            return false
        }
    }

    func testSkippableFrameAndGarbageAfterMagicAreCorrupt() {
        let skippable: [UInt8] = [0x50, 0x2A, 0x4D, 0x18, 4, 0, 0, 0, 1, 2, 3, 4]
        assertRejects(skippable, limits: .standard, "skippable frame") {
            if case .zstdCorrupt = $0 { return true }
            return false
        }
        // Reserved bit 3 of the frame header descriptor set.
        assertRejects([0x28, 0xB5, 0x2F, 0xFD, 0x08, 0x50, 0, 0, 0, 0], limits: .standard, "reserved bit") {
            if case .zstdCorrupt = $0 { return true }
            return false
        }
    }

    func testFilesOverTheSizeCapAreNotRead() throws {
        let archive = sampleCheckpoint()
        let plainPath = directory.appendingPathComponent("big.safetensors").path
        try archive.write(toFile: plainPath)
        let size = archive.serialized().count
        XCTAssertThrowsError(try SafeTensors(contentsOfFile: plainPath, limits: ReadLimits(maxContentSize: size - 1))) {
            error in
            guard case CheckpointError.fileTooLarge(plainPath, UInt64(size), _)? = error as? CheckpointError else {
                return XCTFail("unexpected \(error)")
            }
        }
        XCTAssertNoThrow(try SafeTensors(contentsOfFile: plainPath, limits: ReadLimits(maxContentSize: size)))
        assertRejects(archive.serialized(), limits: ReadLimits(maxContentSize: 100), "plain bytes over the cap") {
            if case .fileTooLarge(_, UInt64(size), 100) = $0 { return true }
            return false
        }
        // A compressed file bigger than any frame of 100 bytes of content could be.
        let packedPath = directory.appendingPathComponent("big.safetensors.zst").path
        try archive.write(toFile: packedPath, compression: .zstd())
        XCTAssertThrowsError(try SafeTensors(contentsOfFile: packedPath, limits: ReadLimits(maxContentSize: 100))) {
            error in
            guard case CheckpointError.fileTooLarge(packedPath, _, let limit)? = error as? CheckpointError, limit < 1000
            else {
                return XCTFail("unexpected \(error)")
            }
        }
    }

    func testMessagesSayWhatWhereAndWhatToDo() {
        let errors: [CheckpointError] = [
            .fileTooLarge(source: "s.zst", size: 10, limit: 5),
            .decompressedTooLarge(source: "s.zst", declared: 10, limit: 5),
            .decompressedTooLarge(source: "s.zst", declared: nil, limit: 5),
            .zstdWindowTooLarge(source: "s.zst", windowSize: 1 << 31, limit: 1 << 27),
            .zstdTruncated(source: "s.zst", size: 3),
            .zstdChecksumMismatch(source: "s.zst"),
            .zstdTrailingData(source: "s.zst", offset: 9, trailing: 1),
            .zstdCorrupt(source: "s.zst", reason: "Unknown frame descriptor"),
            .nonFinite(source: "s.zst", tensors: ["fc.weight"]),
        ]
        for error in errors {
            let text = error.description
            XCTAssertTrue(text.hasPrefix("s.zst: "), text)
            XCTAssertTrue(
                ["copy", "raise", "recompress", "re-export", "retrain", "use an earlier"].contains {
                    text.contains($0)
                }, text)
        }
        XCTAssertTrue(CheckpointError.compressionFailed(reason: "x").description.contains("uncompressed"))
    }

    /// Measures the default level against others on the largest fixture this repository has, so
    /// the choice documented on `defaultZstdLevel` can be re-checked (numbers go to the log).
    func testCompressionRatioAndTimeOfTheDefaultLevel() throws {
        let fixture = URL(fileURLWithPath: TestFixtures.goldenDirectory).appendingPathComponent("resnet20.safetensors")
        guard FileManager.default.fileExists(atPath: fixture.path) else { throw XCTSkip("no resnet20 fixture") }
        let archive = try SafeTensors(contentsOf: fixture)
        let plain = archive.serialized()
        for level in [1, SafeTensors.Compression.defaultZstdLevel, 10, 19] {
            let start = Date()
            let packed = try archive.serialized(compression: .zstd(level: level))
            let seconds = Date().timeIntervalSince(start)
            let readStart = Date()
            XCTAssertEqual(try SafeTensors(bytes: packed).serialized(), plain)
            print(
                String(
                    format: "zstd level %d on resnet20 (%d bytes): ratio %.4f, compress %.3f s, read %.3f s",
                    level, plain.count, Double(plain.count) / Double(packed.count), seconds,
                    Date().timeIntervalSince(readStart)))
            XCTAssertLessThan(seconds, 30, "level \(level) is unreasonably slow")
        }
    }
}
