import Data
import Foundation
import TensorCore
import XCTest

final class DatasetCatalogTests: XCTestCase {
    func testDigitsSplitAndFlags() throws {
        let (train, test) = try DatasetCatalog.load("digits", directory: fixturesDir())
        XCTAssertEqual(train.count, 1500)
        XCTAssertEqual(test.count, 297)
        XCTAssertEqual(train.imageShape, [1, 8, 8])
        XCTAssertEqual([train.channels, train.height, train.width], [1, 8, 8])
        XCTAssertEqual(train.numClasses, 10)
        XCTAssertEqual(train.name, "digits")
        XCTAssertFalse(train.allowsHorizontalFlip)
        XCTAssertEqual(
            zip(train.classCounts(), test.classCounts()).map(+),
            [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
        // The split is positional: the test set is the file's last 297 samples.
        let all = try IDX.readLabels(path: fixture("digits-labels-idx1-ubyte"), numClasses: 10)
        XCTAssertEqual(test.labels, Array(all[1500...]))
        let limited = try DatasetCatalog.load("digits", directory: fixturesDir(), limit: 10)
        XCTAssertEqual(limited.train.count, 10)
        XCTAssertEqual(limited.test.labels, Array(all[1500..<1510]))
    }

    func testGzippedDirectoryAndSearchOrder() throws {
        let gzDir = fixturesDir() + "/gz"
        let (train, _) = try DatasetCatalog.load("digits", searchDirectories: ["/nonexistent", gzDir])
        let (plainTrain, _) = try DatasetCatalog.load("digits", directory: fixturesDir())
        XCTAssertEqual(train.images.array, plainTrain.images.array)
        XCTAssertEqual(try DatasetCatalog.locate("digits", searchDirectories: [fixturesDir(), gzDir]), fixturesDir())
    }

    func testStatistics() throws {
        let t = Tensor(shape: [2, 2, 1, 2], data: [0, 1, 0.5, 0.5, /* image 2 */ 1, 0, 0.5, 0.5])
        let stats = ChannelStatistics(images: t)
        XCTAssertEqual(stats.mean, [0.5, 0.5])
        XCTAssertEqual(stats.std, [0.5, 0])
        let (train, _) = try DatasetCatalog.load("digits", directory: fixturesDir())
        let s = train.channelStatistics()
        XCTAssertEqual(s.mean.count, 1)
        XCTAssertEqual(s.mean[0], train.images.array.reduce(0, +) / Float(train.images.count), accuracy: 1e-4)
        XCTAssertGreaterThan(s.std[0], 0.1)
    }

    func testCIFAR10Directory() throws {
        let dir = try makeTempDir(self)
        let bytes = try fixtureBytes("test_batch_first20.bin")
        for name in CIFAR10.trainFiles + CIFAR10.testFiles { try write(bytes, dir, name) }
        let (train, test) = try DatasetCatalog.load("cifar10", directory: dir)
        XCTAssertEqual(train.count, 100)
        XCTAssertEqual(test.count, 20)
        XCTAssertEqual(train.imageShape, [3, 32, 32])
        XCTAssertTrue(train.allowsHorizontalFlip)
        XCTAssertEqual(try DatasetCatalog.load("CIFAR-10", directory: dir, limit: 30).train.count, 30)
        try FileManager.default.removeItem(atPath: dir + "/data_batch_3.bin")
        assertDataError(try DatasetCatalog.load("cifar10", directory: dir), mentioning: "data_batch_3.bin") {
            if case .fileNotFound(_, let hint) = $0 { return hint.contains("--data-dir") }
            return false
        }
    }

    func testUnknownAndMissing() {
        assertDataError(try DatasetCatalog.load("imagenet")) {
            if case .unknownDataset("imagenet", let known) = $0 {
                return known == ["fashion-mnist", "mnist", "digits", "cifar10", "cifar100", "cifar100-coarse"]
            }
            return false
        }
        assertDataError(try DatasetCatalog.load("fashion-mnist", directory: "/nonexistent/fm")) {
            if case .datasetNotFound("fashion-mnist", ["/nonexistent/fm"], _) = $0 {
                return $0.description.contains("Debian package dataset-fashion-mnist")
                    && $0.description.contains("--data-dir")
            }
            return false
        }
        assertDataError(try DatasetCatalog.locate("mnist", searchDirectories: ["/nonexistent/a"])) {
            if case .datasetNotFound("mnist", ["/nonexistent/a"], let hint) = $0 { return hint.contains("--data-dir") }
            return false
        }
    }

    func testMismatchedPair() throws {
        let dir = try makeTempDir(self)
        try write(try fixtureBytes("digits-images-idx3-ubyte"), dir, "digits-images-idx3-ubyte")
        try write(idxHeader([3]) + [1, 2, 3], dir, "digits-labels-idx1-ubyte")
        assertDataError(try DatasetCatalog.load("digits", directory: dir)) {
            if case .countMismatch(_, 1797, _, 3) = $0 { return true }
            return false
        }
    }

    func testFashionMNISTIfInstalled() throws {
        let dir = "/usr/share/datasets/fashion-mnist"
        guard FileManager.default.fileExists(atPath: dir) else {
            throw XCTSkip("\(dir) not installed (Debian package dataset-fashion-mnist)")
        }
        let (train, test) = try DatasetCatalog.load("fashion-mnist")
        XCTAssertEqual(train.count, 60000)
        XCTAssertEqual(test.count, 10000)
        XCTAssertEqual(train.imageShape, [1, 28, 28])
        XCTAssertTrue(train.allowsHorizontalFlip)
        XCTAssertEqual(train.classCounts(), [Int](repeating: 6000, count: 10))
        let stats = train.channelStatistics()
        XCTAssertEqual(stats.mean[0], 0.2860, accuracy: 1e-3)  // the published Fashion-MNIST mean
        XCTAssertEqual(stats.std[0], 0.3530, accuracy: 1e-3)
    }

    func testMNISTIfPresent() throws {
        let dir = "/work/shared/data/mnist"
        guard FileManager.default.fileExists(atPath: dir) else { throw XCTSkip("\(dir) not present") }
        let (train, test) = try DatasetCatalog.load("mnist", searchDirectories: [dir], limit: 100)
        XCTAssertEqual(train.count, 100)
        XCTAssertEqual(test.count, 100)
        XCTAssertEqual(train.imageShape, [1, 28, 28])
        XCTAssertFalse(train.allowsHorizontalFlip)
        XCTAssertEqual(Array(train.labels.prefix(8)), [5, 0, 4, 1, 9, 2, 1, 3])  // MNIST's first labels
    }
}
