import Data
import Foundation
import TensorCore
import XCTest

final class BatchIteratorTests: XCTestCase {
    /// `n` one-pixel images whose value and label identify the sample.
    func indexed(_ n: Int, flip: Bool = true) -> Dataset {
        Dataset(
            name: "indexed", images: Tensor(shape: [n, 1, 1, 1], data: (0..<n).map(Float.init)),
            labels: (0..<n).map { Int32($0 % 7) }, numClasses: 7, allowsHorizontalFlip: flip)
    }

    func samples(_ batch: Batch) -> [Int] { batch.images.array.map { Int($0) } }

    func testBatchesCoverEpochExactlyOnce() {
        let data = indexed(103)
        var seen: [Int] = []
        var sizes: [Int] = []
        for batch in data.batches(options: BatchOptions(batchSize: 10), seed: 1, epoch: 0) {
            sizes.append(batch.labels.count)
            XCTAssertEqual(batch.images.shape, [batch.labels.count, 1, 1, 1])
            XCTAssertEqual(batch.labels, samples(batch).map { Int32($0 % 7) })  // labels follow images
            seen += samples(batch)
        }
        XCTAssertEqual(sizes, [Int](repeating: 10, count: 10) + [3])
        XCTAssertEqual(seen.sorted(), Array(0..<103))
        XCTAssertNotEqual(seen, Array(0..<103))  // shuffled

        let dropped = Array(data.batches(options: BatchOptions(batchSize: 10, dropLast: true), seed: 1, epoch: 0))
        XCTAssertEqual(dropped.count, 10)
        let ordered = data.batches(options: .evaluation(batchSize: 25), seed: 1, epoch: 0).flatMap(samples)
        XCTAssertEqual(ordered, Array(0..<103))
    }

    func testShuffleIsDeterministicPerSeedAndEpoch() {
        let data = indexed(500)
        let opts = BatchOptions(batchSize: 64)
        let a = BatchIterator(dataset: data, options: opts, seed: 42, epoch: 3).order
        let b = BatchIterator(dataset: data, options: opts, seed: 42, epoch: 3).order
        let c = BatchIterator(dataset: data, options: opts, seed: 42, epoch: 4).order
        let d = BatchIterator(dataset: data, options: opts, seed: 43, epoch: 3).order
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        XCTAssertNotEqual(a, d)
        XCTAssertEqual(a.sorted(), Array(0..<500))
        // The documented derivation, so other code (or a future reimplementation) can reproduce it.
        var rng = RNG(seed: 42).fork(3).fork(0)
        var expected = Array(0..<500)
        expected.seededShuffle(using: &rng)
        XCTAssertEqual(a, expected)
    }

    func testResumeMidEpochGivesTheSameBatches() throws {
        let (train, _) = try DatasetCatalog.load("cifar10", directory: cifarDir(), limit: 50)
        let opts = BatchOptions(batchSize: 8, cropPadding: 4, horizontalFlip: true)
        let full = Array(train.batches(options: opts, seed: 7, epoch: 2))
        var resumed = train.batches(options: opts, seed: 7, epoch: 2, startBatch: 4)
        XCTAssertEqual(resumed.position.batchIndex, 4)
        var k = 4
        while let batch = resumed.next() {
            XCTAssertEqual(batch.index, k)
            XCTAssertEqual(batch.images.array, full[k].images.array)
            XCTAssertEqual(batch.labels, full[k].labels)
            k += 1
        }
        XCTAssertEqual(k, full.count)
        XCTAssertEqual(resumed.position.batchIndex, resumed.batchCount)
    }

    func cifarDir() throws -> String {
        let dir = try makeTempDir(self)
        let bytes = try fixtureBytes("test_batch_first20.bin")
        for name in CIFAR10.trainFiles + CIFAR10.testFiles { try write(bytes, dir, name) }
        return dir
    }

    func testShiftAndFlipKernel() {
        // One 3x4 image, values 1...12, and a second channel 101...112.
        let src: [Float] = (1...12).map(Float.init) + (101...112).map(Float.init)
        func run(_ draw: AugmentationDraw) -> [Float] {
            var out = [Float](repeating: -1, count: 24)
            src.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { d in
                    Augmentation.shiftAndFlip(
                        s.baseAddress!, d.baseAddress!, channels: 2, height: 3, width: 4, draw: draw)
                }
            }
            return out
        }
        XCTAssertEqual(run(.identity), src)
        // Output row y shows input row y+1; column x shows input column x-1.
        XCTAssertEqual(
            Array(run(AugmentationDraw(dy: 1, dx: -1, flip: false)).prefix(12)),
            [
                0, 5, 6, 7,
                0, 9, 10, 11,
                0, 0, 0, 0,
            ])
        XCTAssertEqual(
            Array(run(AugmentationDraw(dy: -2, dx: 2, flip: false)).suffix(12)),
            [
                0, 0, 0, 0,
                0, 0, 0, 0,
                103, 104, 0, 0,
            ])
        XCTAssertEqual(
            Array(run(AugmentationDraw(dy: 0, dx: 0, flip: true)).prefix(12)),
            [4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9])
        // Crop then flip: flip of the (dy 0, dx 1) crop [2 3 4 0] is [0 4 3 2].
        XCTAssertEqual(Array(run(AugmentationDraw(dy: 0, dx: 1, flip: true)).prefix(4)), [0, 4, 3, 2])
        XCTAssertEqual(run(AugmentationDraw(dy: 3, dx: 0, flip: false)), [Float](repeating: 0, count: 24))
        XCTAssertEqual(run(AugmentationDraw(dy: 0, dx: -5, flip: true)), [Float](repeating: 0, count: 24))
    }

    func testIteratorAppliesItsDraws() throws {
        let (train, _) = try DatasetCatalog.load("cifar10", directory: cifarDir(), limit: 20)
        let opts = BatchOptions(batchSize: 20, shuffle: false, cropPadding: 2, horizontalFlip: true)
        var it = train.batches(options: opts, seed: 3, epoch: 0)
        let batch = try XCTUnwrap(it.next())
        XCTAssertEqual(it.lastDraws.count, 20)
        XCTAssertTrue(it.lastDraws.allSatisfy { abs($0.dy) <= 2 && abs($0.dx) <= 2 })
        XCTAssertTrue(it.lastDraws.contains { $0.flip } && it.lastDraws.contains { !$0.flip })
        let per = 3 * 32 * 32
        var expected = [Float](repeating: 0, count: 20 * per)
        train.images.withUnsafePointer { src in
            expected.withUnsafeMutableBufferPointer { dst in
                for k in 0..<20 {
                    Augmentation.shiftAndFlip(
                        src + k * per, dst.baseAddress! + k * per,
                        channels: 3, height: 32, width: 32, draw: it.lastDraws[k])
                }
            }
        }
        XCTAssertEqual(batch.images.array, expected)
    }

    func testOffsetsCoverTheRange() {
        let data = indexed(2000)
        var it = data.batches(
            options: BatchOptions(batchSize: 2000, cropPadding: 2, horizontalFlip: true),
            seed: 9, epoch: 0)
        _ = it.next()
        XCTAssertEqual(Set(it.lastDraws.map(\.dy)), Set(-2...2))
        XCTAssertEqual(Set(it.lastDraws.map(\.dx)), Set(-2...2))
        let flips = it.lastDraws.filter(\.flip).count
        XCTAssertTrue((900...1100).contains(flips), "flip rate \(flips)/2000")
    }

    func testDigitsAreNeverFlipped() throws {
        let (train, _) = try DatasetCatalog.load("digits", directory: fixturesDir())
        let opts = BatchOptions(batchSize: 128, cropPadding: 1, horizontalFlip: true)
        var it = train.batches(options: opts, seed: 5, epoch: 0)
        XCTAssertFalse(it.flipsImages)
        while it.next() != nil {
            XCTAssertFalse(it.lastDraws.contains { $0.flip })
        }
    }

    func testBuffersAreReused() throws {
        let (train, _) = try DatasetCatalog.load("digits", directory: fixturesDir())
        let opts = BatchOptions(batchSize: 100, cropPadding: 1)
        var it = train.batches(options: opts, seed: 5, epoch: 0)
        var addresses = Set<UnsafePointer<Float>>()
        while let batch = it.next() {
            addresses.insert(batch.images.withUnsafePointer { $0 })
        }
        XCTAssertEqual(addresses.count, 1)  // 15 full batches, one buffer

        // Caller-owned buffers: filled in place.
        var images = Tensor(shape: [100, 1, 8, 8])
        var labels: [Int32] = []
        var it2 = train.batches(options: opts, seed: 5, epoch: 0)
        let first = images.withUnsafePointer { $0 }
        var n = 0
        while it2.next(into: &images, labels: &labels) {
            XCTAssertEqual(images.withUnsafePointer { $0 }, first)
            n += labels.count
        }
        XCTAssertEqual(n, 1500)
    }
}
