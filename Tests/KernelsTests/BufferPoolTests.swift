import Kernels
import XCTest

/// The pool hands a recycled buffer back to the next request of its size, never to another size,
/// keeps small buffers out, respects its cap, and survives many threads at once.
final class BufferPoolTests: XCTestCase {
    override func setUp() { BufferPool.drain() }
    override func tearDown() { BufferPool.drain() }

    func testLargeBuffersAreReusedBySizeOnly() {
        let n = BufferPool.minimumCount * 3
        let a = BufferPool.take(n)
        XCTAssertEqual(Int(bitPattern: a) % 64, 0, "64-byte alignment")
        a.update(repeating: 1, count: n)  // the whole buffer is writable
        BufferPool.recycle(a, count: n)
        XCTAssertEqual(BufferPool.cachedBytes, n * 4)
        let other = BufferPool.take(n + 1)
        XCTAssertNotEqual(other, a, "a different size never gets the cached buffer")
        let again = BufferPool.take(n)
        XCTAssertEqual(again, a, "the same size gets it back")
        XCTAssertEqual(BufferPool.cachedBytes, 0)
        BufferPool.recycle(again, count: n)
        BufferPool.recycle(other, count: n + 1)
        BufferPool.drain()
        XCTAssertEqual(BufferPool.cachedBytes, 0)
    }

    func testSmallBuffersAreNotKept() {
        let p = BufferPool.take(100)
        BufferPool.recycle(p, count: 100)
        XCTAssertEqual(BufferPool.cachedBytes, 0)
    }

    func testCapIsRespected() {
        let saved = BufferPool.capacityBytes
        defer { BufferPool.capacityBytes = saved }
        let n = BufferPool.minimumCount
        BufferPool.capacityBytes = n * 4 * 2
        let buffers = (0..<3).map { _ in BufferPool.take(n) }
        for b in buffers { BufferPool.recycle(b, count: n) }
        XCTAssertEqual(BufferPool.cachedBytes, n * 4 * 2, "the third buffer is freed, not kept")
    }

    func testConcurrentTakeAndRecycleNeverShareABuffer() {
        let n = BufferPool.minimumCount
        let failures = UnsafeMutablePointer<Int>.allocate(capacity: 8)
        failures.initialize(repeating: 0, count: 8)
        defer { failures.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for round in 0..<200 {
                let p = BufferPool.take(n + (round % 3))
                let mark = Float(t * 1000 + round)
                p.update(repeating: mark, count: 64)
                if (0..<64).contains(where: { p[$0] != mark }) { failures[t] += 1 }
                BufferPool.recycle(p, count: n + (round % 3))
            }
        }
        XCTAssertEqual((0..<8).map { failures[$0] }.reduce(0, +), 0)
    }
}
