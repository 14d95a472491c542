import Data
import Foundation
import TensorCore
import XCTest

final class IDXTests: XCTestCase {
    func testDigitsParse() throws {
        let images = try IDX.readImages(path: fixture("digits-images-idx3-ubyte"), maxValue: 16)
        XCTAssertEqual(images.shape, [1797, 1, 8, 8])
        let values = images.array
        XCTAssertGreaterThanOrEqual(values.min()!, 0)
        XCTAssertEqual(values.max()!, 1)  // some pixel is 16/16
        // Pixels are k/16 exactly.
        XCTAssertTrue(values.allSatisfy { ($0 * 16).rounded() == $0 * 16 })
        let labels = try IDX.readLabels(path: fixture("digits-labels-idx1-ubyte"), numClasses: 10)
        XCTAssertEqual(labels.count, 1797)
        var counts = [Int](repeating: 0, count: 10)
        for l in labels { counts[Int(l)] += 1 }
        XCTAssertEqual(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
        XCTAssertEqual(Array(labels.prefix(10)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    }

    func testGzipAndPlainParseIdentically() throws {
        let plainImages = try IDX.readImages(path: fixture("digits-images-idx3-ubyte"), maxValue: 16)
        let gzImages = try IDX.readImages(path: fixture("gz/digits-images-idx3-ubyte.gz"), maxValue: 16)
        XCTAssertEqual(plainImages.shape, gzImages.shape)
        XCTAssertEqual(plainImages.array, gzImages.array)
        let plainLabels = try IDX.readLabels(path: fixture("digits-labels-idx1-ubyte"), numClasses: 10)
        let gzLabels = try IDX.readLabels(path: fixture("gz/digits-labels-idx1-ubyte.gz"), numClasses: 10)
        XCTAssertEqual(plainLabels, gzLabels)
        // Stored-block gzip made by the test itself.
        let dir = try makeTempDir(self)
        let stored = try write(gzipStored(try fixtureBytes("digits-images-idx3-ubyte")), dir, "stored")
        XCTAssertEqual(try IDX.readImages(path: stored, maxValue: 16).array, plainImages.array)
        // Concatenated gzip members (`cat a.gz b.gz`) decode as one stream.
        let multi = try IDX.readLabels(path: fixture("gz/multimember-digits-labels-idx1-ubyte.gz"), numClasses: 10)
        XCTAssertEqual(plainLabels, multi)
    }

    func testGzipDetectedByContentNotName() throws {
        let dir = try makeTempDir(self)
        // A gzipped file without .gz and a plain file named .gz.
        let gz = try write(try fixtureBytes("gz/digits-labels-idx1-ubyte.gz"), dir, "labels")
        let plain = try write(try fixtureBytes("digits-labels-idx1-ubyte"), dir, "labels.gz")
        XCTAssertEqual(try IDX.readLabels(path: gz, numClasses: 10), try IDX.readLabels(path: plain, numClasses: 10))
    }

    func testLimitKeepsFirstSamples() throws {
        let all = try IDX.readImages(path: fixture("gz/digits-images-idx3-ubyte.gz"), maxValue: 16)
        let some = try IDX.readImages(path: fixture("gz/digits-images-idx3-ubyte.gz"), maxValue: 16, limit: 5)
        XCTAssertEqual(some.shape, [5, 1, 8, 8])
        XCTAssertEqual(some.array, Array(all.array.prefix(5 * 64)))
        XCTAssertEqual(
            try IDX.readLabels(path: fixture("digits-labels-idx1-ubyte"), numClasses: 10, limit: 3), [0, 1, 2])
    }

    func testMissingFile() {
        assertDataError(
            try IDX.readLabels(path: "/nonexistent/labels", numClasses: 10, hint: "do X"),
            mentioning: "/nonexistent/labels"
        ) {
            if case .fileNotFound(_, "do X") = $0 { return true }
            return false
        }
    }

    func testTruncatedFiles() throws {
        let dir = try makeTempDir(self)
        let labels = try fixtureBytes("digits-labels-idx1-ubyte")
        let cut = try write(Array(labels.prefix(100)), dir, "cut")
        assertDataError(try IDX.readLabels(path: cut, numClasses: 10), mentioning: cut) {
            if case .truncated(_, 1805, 100, false) = $0 { return true }
            return false
        }
        let empty = try write([], dir, "empty")
        assertDataError(try IDX.readLabels(path: empty, numClasses: 10)) {
            if case .truncated(_, 8, 0, false) = $0 { return true }
            return false
        }
        let halfHeader = try write(idxHeader([2, 3, 3]).prefix(10).map { $0 }, dir, "half")
        assertDataError(try IDX.readImages(path: halfHeader)) {
            if case .truncated(_, 16, 10, false) = $0 { return true }
            return false
        }
        // Gzipped content that ends early: the stream is intact, the IDX payload is short.
        let images = try fixtureBytes("digits-images-idx3-ubyte")
        let short = try write(idxHeader([1797, 8, 8]) + Array(images[16..<1000]), dir, "short")
        assertDataError(try IDX.readImages(path: short, maxValue: 16)) {
            if case .truncated(_, 115_024, 1000, false) = $0 { return true }
            return false
        }
    }

    func testTruncatedGzipStream() throws {
        let dir = try makeTempDir(self)
        let gz = try fixtureBytes("gz/digits-images-idx3-ubyte.gz")
        let cut = try write(Array(gz.prefix(gz.count / 2)), dir, "cut.gz")
        assertDataError(try IDX.readImages(path: cut, maxValue: 16), mentioning: cut) {
            if case .gzipCorrupt(_, _, let reason) = $0 { return reason.contains("truncated") }
            return false
        }
    }

    func testCorruptGzip() throws {
        let dir = try makeTempDir(self)
        var gz = try fixtureBytes("gz/digits-images-idx3-ubyte.gz")
        // Damage the CRC-32 in the trailer: the data inflates but the check fails.
        gz[gz.count - 8] ^= 0xFF
        let badCRC = try write(gz, dir, "crc.gz")
        assertDataError(try DataFile.content(of: badCRC), mentioning: badCRC) {
            if case .gzipCorrupt(_, _, let reason) = $0 { return reason.contains("check") }
            return false
        }
        // Damage the deflate data itself.
        var gz2 = try fixtureBytes("gz/digits-images-idx3-ubyte.gz")
        for i in 20..<60 { gz2[i] = 0xFF }
        let badData = try write(gz2, dir, "data.gz")
        assertDataError(try IDX.readImages(path: badData, maxValue: 16)) {
            if case .gzipCorrupt = $0 { return true }
            return false
        }
        // Bytes after the last member that are not another member.
        let junk = try write(try fixtureBytes("gz/digits-labels-idx1-ubyte.gz") + Array("junk".utf8), dir, "junk.gz")
        assertDataError(try IDX.readLabels(path: junk, numClasses: 10)) {
            if case .gzipCorrupt(_, 145, let reason) = $0 { return reason.contains("trailing garbage") }
            return false
        }
    }

    func testBadMagicAndDType() throws {
        let dir = try makeTempDir(self)
        let html = try write(Array("<html><body>404</body></html>".utf8), dir, "page")
        assertDataError(try IDX.readImages(path: html), mentioning: html) {
            if case .badMagic(_, 0, let found, _) = $0 { return found == Array("<htm".utf8) }
            return false
        }
        let floats = try write(idxHeader([1], type: 0x0D) + [0, 0, 0, 0], dir, "floats")
        assertDataError(try IDX.readLabels(path: floats, numClasses: 10)) {
            if case .wrongDType(_, 0x0D, 0x08) = $0 { return true }
            return false
        }
        // A labels file given where images are expected.
        let labels = fixture("digits-labels-idx1-ubyte")
        assertDataError(try IDX.readImages(path: labels, maxValue: 16)) {
            if case .wrongShape(_, [1797], _) = $0 { return true }
            return false
        }
    }

    func testOversizedHeaderIsRefused() throws {
        let dir = try makeTempDir(self)
        // 2^32-1 cubed overflows Int; 60000 x 4096 x 4096 is 1 TB: both refused before allocating.
        let overflow = try write(idxHeader([0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF]), dir, "overflow")
        assertDataError(try IDX.readImages(path: overflow)) {
            if case .tooLarge = $0 { return true }
            return false
        }
        let huge = try write(idxHeader([60000, 4096, 4096]), dir, "huge")
        assertDataError(try IDX.readImages(path: huge)) {
            if case .tooLarge = $0 { return true }
            return false
        }
    }

    func testDecompressionBombIsRefused() throws {
        // 16 MiB of zeros in 16 KB: refused by an explicit cap...
        assertDataError(try DataFile.content(of: fixture("gz/zeros-16MiB.gz"), maxBytes: 1 << 20)) {
            if case .tooLarge(_, _, 1 << 20) = $0 { return true }
            return false
        }
        XCTAssertEqual(try DataFile.content(of: fixture("gz/zeros-16MiB.gz")).count, 16 << 20)
        // ...and by the IDX header: zeros read as a labels header declaring 0 dimensions.
        assertDataError(try IDX.readLabels(path: fixture("gz/zeros-16MiB.gz"), numClasses: 10)) {
            if case .wrongDType = $0 { return true }
            return false
        }
    }

    func testTrailingDataIsRefused() throws {
        let dir = try makeTempDir(self)
        let plain = try write(idxHeader([2]) + [1, 2, 3], dir, "extra")
        assertDataError(try IDX.readLabels(path: plain, numClasses: 10)) {
            if case .trailingData(_, 10, 11, false) = $0 { return true }
            return false
        }
        // Gzip: a valid 2-label file followed by a 16 MiB bomb member. The reader stops at the
        // first byte past the header's size instead of inflating the rest.
        let bomb = gzipStored(idxHeader([2]) + [1, 2]) + (try fixtureBytes("gz/zeros-16MiB.gz"))
        let path = try write(bomb, dir, "bomb.gz")
        let start = Date()
        assertDataError(try IDX.readLabels(path: path, numClasses: 10), mentioning: path) {
            if case .trailingData(_, 10, nil, true) = $0 { return true }
            return false
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
        XCTAssertEqual(try DataFile.content(of: path).count, 10 + 16 << 20)
    }

    func testValueRangeChecks() throws {
        let dir = try makeTempDir(self)
        let labels = try write(idxHeader([3]) + [1, 10, 2], dir, "labels")
        assertDataError(try IDX.readLabels(path: labels, numClasses: 10), mentioning: labels) {
            if case .labelOutOfRange(_, 1, 9, 10, 10) = $0 { return true }
            return false
        }
        // MNIST-scale pixels read with the digits scale.
        let images = try write(idxHeader([1, 2, 2]) + [0, 16, 17, 255], dir, "images")
        assertDataError(try IDX.readImages(path: images, maxValue: 16)) {
            if case .pixelOutOfRange(_, 18, 17, 16) = $0 { return true }
            return false
        }
        let ok = try IDX.readImages(path: images, maxValue: 255)
        XCTAssertEqual(ok.array, [0, Float(16) / 255, Float(17) / 255, 1])
    }

    func testErrorMessagesSayWhatToDo() {
        let e = DataError.truncated(path: "/d/x", expected: 10, got: 4, decompressed: false)
        XCTAssertEqual(
            e.description,
            "/d/x is truncated: expected 10 file bytes, got 4. The file is incomplete; download or copy it again.")
        let u = DataError.unknownDataset(name: "imagenet", known: ["a", "b"])
        XCTAssertTrue(u.description.contains("known datasets: a, b"))
    }
}
