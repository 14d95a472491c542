import Kernels
import XCTest

/// `gemm` (OpenBLAS) against its triple-loop twin on odd sizes, every transpose and strides.
final class GemmTests: XCTestCase {
    func testMatchesReferenceOnOddShapes() {
        var seed: UInt64 = 7
        func rand() -> Float {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int(seed >> 40) % 2001 - 1000) / 1000
        }
        for (m, n, k) in [(1, 1, 1), (3, 5, 7), (17, 33, 9), (64, 31, 129), (5, 1, 300)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let lda = (transA ? m : k) + 2
                    let ldb = (transB ? k : n) + 1
                    let ldc = n + 3
                    let a = (0..<((transA ? k : m) * lda)).map { _ in rand() }
                    let b = (0..<((transB ? n : k) * ldb)).map { _ in rand() }
                    let c0 = (0..<(m * ldc)).map { _ in rand() }
                    var fast = c0
                    var slow = c0
                    fast.withUnsafeMutableBufferPointer { c in
                        gemm(
                            transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.7, a: a, lda: lda, b: b,
                            ldb: ldb, beta: 0.3, c: c.baseAddress!, ldc: ldc)
                    }
                    slow.withUnsafeMutableBufferPointer { c in
                        referenceGemm(
                            transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.7, a: a, lda: lda, b: b,
                            ldb: ldb, beta: 0.3, c: c.baseAddress!, ldc: ldc)
                    }
                    for i in 0..<fast.count {
                        XCTAssertEqual(
                            fast[i], slow[i], accuracy: 1e-4 * Float(k),
                            "m\(m) n\(n) k\(k) tA\(transA) tB\(transB) at \(i)")
                    }
                }
            }
        }
    }

    func testParallelForCoversEveryIndexOnce() {
        Compute.configure(threads: 3)
        defer { Compute.configure(threads: 0) }
        for count in [0, 1, 2, 5, 1000] {
            var hits = [Int](repeating: 0, count: count)
            let lock = NSLock()
            Compute.parallelFor(count) { r in
                lock.lock()
                for i in r { hits[i] += 1 }
                lock.unlock()
            }
            XCTAssertEqual(hits, [Int](repeating: 1, count: count))
        }
    }
}
