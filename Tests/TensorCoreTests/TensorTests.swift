import TensorCore
import XCTest

final class TensorTests: XCTestCase {
    func testCopyOnWrite() {
        let a = Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        var b = a
        b[flat: 0] = 9
        XCTAssertEqual(a[flat: 0], 1)
        XCTAssertEqual(b.array, [9, 2, 3, 4, 5, 6])
        let r = a.reshaped([3, 2])
        XCTAssertEqual(r.shape, [3, 2])
        XCTAssertEqual(r.array, a.array)
    }

    func testRNGIsReproducibleAndForksIndependently() {
        var a = RNG(seed: 42)
        var b = RNG(seed: 42)
        XCTAssertEqual((0..<10).map { _ in a.next() }, (0..<10).map { _ in b.next() })
        var c = RNG(seed: 43)
        XCTAssertNotEqual(a.next(), c.next())
        var f1 = a.fork(1)
        var f2 = a.fork(2)
        XCTAssertNotEqual(f1.next(), f2.next())
        var u = RNG(seed: 1)
        let xs = (0..<10_000).map { _ in u.uniform() }
        XCTAssertTrue(xs.allSatisfy { $0 >= 0 && $0 < 1 })
        XCTAssertEqual(xs.reduce(0, +) / 10_000, 0.5, accuracy: 0.02)
        let ns = (0..<10_000).map { _ in u.normal() }
        let mean = ns.reduce(0, +) / 10_000
        let variance = ns.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 10_000
        XCTAssertEqual(mean, 0, accuracy: 0.05)
        XCTAssertEqual(variance, 1, accuracy: 0.05)
    }

    func testSeededShuffleIsAPermutation() {
        var r1 = RNG(seed: 5)
        var r2 = RNG(seed: 5)
        var a = Array(0..<100)
        var b = Array(0..<100)
        a.seededShuffle(using: &r1)
        b.seededShuffle(using: &r2)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, Array(0..<100))
        XCTAssertEqual(a.sorted(), Array(0..<100))
    }

    /// gather copies the chosen first-dimension slices in order, repeats allowed.
    func testGatherRows() {
        let t = Tensor(shape: [4, 2, 1], data: (0..<8).map(Float.init))
        let g = t.gather(rows: [3, 0, 3])
        XCTAssertEqual(g.shape, [3, 2, 1])
        XCTAssertEqual(g.array, [6, 7, 0, 1, 6, 7])
        XCTAssertEqual(t.gather(rows: [Int]()).shape, [0, 2, 1])
    }
}
