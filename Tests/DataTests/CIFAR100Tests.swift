import Data
import Foundation
import TensorCore
import XCTest

/// CIFAR-100's binary version on records the test writes: coarse label, fine label, 3,072 pixels.
final class CIFAR100Tests: XCTestCase {
    /// `count` records; record r has coarse label r % 20, fine label (7r) % 100, pixel i = (r + i) % 256.
    func records(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        for r in 0..<count {
            out += [UInt8(r % 20), UInt8((7 * r) % 100)]
            out += (0..<3072).map { UInt8((r + $0) % 256) }
        }
        return out
    }

    func testFineAndCoarseLabelsAndPixels() throws {
        let dir = try makeTempDir(self)
        let path = try write(records(6), dir, "train.bin")
        let fine = try CIFAR100.read(paths: [path])
        XCTAssertEqual(fine.images.shape, [6, 3, 32, 32])
        XCTAssertEqual(fine.labels, (0..<6).map { Int32((7 * $0) % 100) })
        XCTAssertEqual(try CIFAR100.read(paths: [path], coarse: true).labels, (0..<6).map { Int32($0 % 20) })
        let values = fine.images.array
        for (r, c, y, x) in [(0, 0, 0, 0), (5, 2, 31, 31), (3, 1, 7, 9)] {
            let i = c * 1024 + y * 32 + x
            XCTAssertEqual(values[r * 3072 + i], Float((r + i) % 256) / 255)
        }
        XCTAssertEqual(try CIFAR100.read(paths: [path], limit: 2).labels, [0, 7])
    }

    func testCatalogLoadsBothLabelings() throws {
        let dir = try makeTempDir(self)
        _ = try write(records(5), dir, "train.bin")
        _ = try write(records(3), dir, "test.bin")
        let fine = try DatasetCatalog.load("cifar100", directory: dir)
        XCTAssertEqual(fine.train.count, 5)
        XCTAssertEqual(fine.test.count, 3)
        XCTAssertEqual(fine.train.numClasses, 100)
        let coarse = try DatasetCatalog.load("CIFAR100_coarse", directory: dir)
        XCTAssertEqual(coarse.train.numClasses, 20)
        XCTAssertEqual(try DatasetCatalog.load("cifar-100", directory: dir).test.count, 3)
        XCTAssertEqual(try DatasetCatalog.spec(named: "cifar100").imageShape, [3, 32, 32])
    }

    func testBadRecordsNameTheFile() throws {
        let dir = try makeTempDir(self)
        var raw = records(3)
        let cut = try write(Array(raw.prefix(3074 + 10)), dir, "cut.bin")
        assertDataError(try CIFAR100.read(paths: [cut]), mentioning: cut) {
            if case .badRecordSize(_, 3084, 3074) = $0 { return true }
            return false
        }
        raw[3074 + 1] = 100  // record 1's fine label
        let bad = try write(raw, dir, "bad.bin")
        assertDataError(try CIFAR100.read(paths: [bad]), mentioning: bad) {
            if case .labelOutOfRange(_, 1, 3074, 100, 100) = $0 { return true }
            return false
        }
        XCTAssertNoThrow(try CIFAR100.read(paths: [bad], coarse: true), "the coarse labels are fine")
        assertDataError(try DatasetCatalog.load("cifar100", directory: dir)) {
            if case .fileNotFound = $0 { return true }
            return false
        }
    }
}
