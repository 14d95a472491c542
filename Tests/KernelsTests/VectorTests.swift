import Kernels
import XCTest

/// Every SIMD kernel against its plain twin on lengths that exercise the vector body, the
/// scalar tail, and both together.
final class VectorTests: XCTestCase {
    let lengths = [0, 1, 7, 15, 16, 17, 33, 64, 100, 1031]

    func data(_ n: Int, _ salt: Int) -> [Float] { (0..<n).map { Float(($0 * 37 + salt * 11) % 97) / 13 - 3.5 } }

    func testElementwiseKernels() {
        for n in lengths {
            let a = data(n, 1)
            let b = data(n, 2)
            var out = [Float](repeating: .nan, count: n)
            Vector.add(a, b, &out, n)
            XCTAssertEqual(out, VectorReference.add(a, b))
            out = [Float](repeating: .nan, count: n)
            Vector.copy(a, &out, n)
            XCTAssertEqual(out, a)
            var y = b
            Vector.axpy(0.3, a, &y, n)
            XCTAssertEqual(y, VectorReference.axpy(0.3, a, b))
            var s = a
            Vector.scale(&s, -1.5, n)
            XCTAssertEqual(s, VectorReference.scale(a, -1.5))
            Vector.scale(a, -1.5, &out, n)
            XCTAssertEqual(out, VectorReference.scale(a, -1.5))
            var m = b
            Vector.maskedAdd(a, b, &m, n)
            XCTAssertEqual(m, VectorReference.maskedAdd(a, b, b))
            Vector.maskedScale(a, b, 0.75, &out, n)
            XCTAssertEqual(out, VectorReference.maskedScale(a, b, 0.75))
            Vector.relu(a, &out, n)
            XCTAssertEqual(out, VectorReference.relu(a))
            Vector.addRelu(a, b, &out, n)
            XCTAssertEqual(out, VectorReference.addRelu(a, b))
            Vector.affineRelu(a, 0.5, -0.25, &out, n)
            XCTAssertEqual(out, VectorReference.affineRelu(a, 0.5, -0.25))
            Vector.reluBackward(a, b, &out, n)
            XCTAssertEqual(out, VectorReference.reluBackward(a, b))
            Vector.affine(a, 0.5, -2, &out, n)
            XCTAssertEqual(out, VectorReference.affine(a, 0.5, -2))
            for relu in [true, false] {
                Vector.affineAdd(a, 0.5, -0.25, b, relu: relu, &out, n)
                XCTAssertEqual(out, VectorReference.affineAdd(a, 0.5, -0.25, b, relu: relu))
            }
            Vector.combine(a, 0.5, b, -1.25, 0.75, &out, n)
            for (u, v) in zip(out, VectorReference.combine(a, 0.5, b, -1.25, 0.75)) {
                XCTAssertEqual(u, v, accuracy: 1e-6)
            }
            var t = a
            Vector.addScalar(&t, 0.25, n)
            XCTAssertEqual(t, VectorReference.addScalar(a, 0.25))
        }
    }

    func testReductions() {
        for n in lengths {
            let a = data(n, 3)
            let b = data(n, 4)
            XCTAssertEqual(Double(Vector.sum(a, n)), VectorReference.sum(a), accuracy: 1e-4 * Double(max(n, 1)))
            XCTAssertEqual(Double(Vector.dot(a, b, n)), VectorReference.dot(a, b), accuracy: 1e-4 * Double(max(n, 1)))
            let (s, q) = Vector.shiftedMoments(a, n, shift: 0.5)
            let (rs, rq) = VectorReference.shiftedMoments(a, shift: 0.5)
            XCTAssertEqual(Double(s), rs, accuracy: 1e-4 * Double(max(n, 1)))
            XCTAssertEqual(Double(q), rq, accuracy: 1e-4 * Double(max(n, 1)))
            let (ds, dd) = Vector.sumAndDot(a, b, n)
            let (rds, rdd) = VectorReference.sumAndDot(a, b)
            XCTAssertEqual(Double(ds), rds, accuracy: 1e-4 * Double(max(n, 1)))
            XCTAssertEqual(Double(dd), rdd, accuracy: 1e-4 * Double(max(n, 1)))
            XCTAssertEqual(Vector.maximum(a, n), VectorReference.maximum(a))
        }
    }

    /// The BatchNorm backward kernels that take a ReLU's mask from its input agree bit for bit
    /// with the ones that read the ReLU's output `affineRelu(x, a, b)`, including inputs that
    /// land exactly on zero.
    func testAffineMaskMatchesReLUOutputMask() {
        for n in lengths {
            let x = data(n, 5)
            let dy = data(n, 6)
            for (a, b) in [(Float(0.5), Float(-0.25)), (-1.25, 0.5), (2, 0)] {
                var y = [Float](repeating: .nan, count: n)
                Vector.affineRelu(x, a, b, &y, n)
                let viaInput = Vector.affineMaskedSumAndDot(x, a, b, dy, n)
                let viaOutput = Vector.maskedSumAndDot(y, dy, x, n)
                XCTAssertEqual(viaInput.sum.bitPattern, viaOutput.sum.bitPattern, "n \(n)")
                XCTAssertEqual(viaInput.dot.bitPattern, viaOutput.dot.bitPattern, "n \(n)")
                var p = [Float](repeating: .nan, count: n)
                var q = p
                Vector.affineMaskedCombine(x, a, b, dy, 0.5, -1.25, 0.75, &p, n)
                Vector.maskedCombine(y, dy, 0.5, x, -1.25, 0.75, &q, n)
                XCTAssertEqual(p.map(\.bitPattern), q.map(\.bitPattern), "n \(n)")
            }
        }
    }
}
