import Data
import Foundation
import TensorCore
import XCTest

final class CIFAR10Tests: XCTestCase {
    let sample = "test_batch_first20.bin"
    let sampleLabels: [Int32] = [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]

    func testSampleLabelsAndPixels() throws {
        let (images, labels) = try CIFAR10.read(paths: [fixture(sample)])
        XCTAssertEqual(images.shape, [20, 3, 32, 32])
        XCTAssertEqual(labels, sampleLabels)
        // Record layout: the pixel bytes of record r are already CHW.
        let raw = try fixtureBytes(sample)
        let values = images.array
        for (r, c, y, x) in [(0, 0, 0, 0), (0, 2, 31, 31), (7, 1, 5, 17), (19, 0, 12, 3)] {
            let byte = raw[r * 3073 + 1 + c * 1024 + y * 32 + x]
            XCTAssertEqual(values[((r * 3 + c) * 32 + y) * 32 + x], Float(byte) / 255)
        }
        XCTAssertTrue(values.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    func testSeveralFilesConcatenateAndLimit() throws {
        let path = fixture(sample)
        let (images, labels) = try CIFAR10.read(paths: [path, path])
        XCTAssertEqual(images.shape, [40, 3, 32, 32])
        XCTAssertEqual(labels, sampleLabels + sampleLabels)
        let (few, fewLabels) = try CIFAR10.read(paths: [path, "/never/opened"], limit: 5)
        XCTAssertEqual(few.shape, [5, 3, 32, 32])
        XCTAssertEqual(fewLabels, Array(sampleLabels.prefix(5)))
        // Gzipped batches load too.
        let dir = try makeTempDir(self)
        let gz = try write(gzipStored(try fixtureBytes(sample)), dir, "test_batch.bin")
        XCTAssertEqual(try CIFAR10.read(paths: [gz]).images.array, try CIFAR10.read(paths: [path]).images.array)
    }

    func testBadSizeAndLabel() throws {
        let dir = try makeTempDir(self)
        var raw = try fixtureBytes(sample)
        let cut = try write(Array(raw.prefix(3073 * 2 + 100)), dir, "cut.bin")
        assertDataError(try CIFAR10.read(paths: [cut]), mentioning: cut) {
            if case .badRecordSize(_, 6246, 3073) = $0 { return true }
            return false
        }
        raw[3073 * 4] = 10
        let bad = try write(raw, dir, "bad.bin")
        assertDataError(try CIFAR10.read(paths: [bad]), mentioning: bad) {
            if case .labelOutOfRange(_, 4, 12292, 10, 10) = $0 { return true }
            return false
        }
        assertDataError(try CIFAR10.read(paths: [dir + "/data_batch_1.bin"])) {
            if case .fileNotFound = $0 { return true }
            return false
        }
        assertDataError(try CIFAR10.read(paths: [dir])) {
            if case .unreadable(_, "not a regular file") = $0 { return true }
            return false
        }
    }
}
