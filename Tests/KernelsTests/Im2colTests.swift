import Kernels
import XCTest

/// `im2col`/`col2im` against their one-check-per-element twins, including geometries where
/// the window hangs over every edge, strides that skip pixels, and 1-pixel images.
final class Im2colTests: XCTestCase {
    let geometries: [ConvGeometry] = [
        ConvGeometry(
            channels: 3, height: 7, width: 5, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1),
        ConvGeometry(
            channels: 2, height: 9, width: 11, kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padH: 1, padW: 1),
        ConvGeometry(
            channels: 1, height: 6, width: 6, kernelH: 5, kernelW: 3, strideH: 3, strideW: 2, padH: 2, padW: 0),
        ConvGeometry(
            channels: 4, height: 1, width: 1, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1),
        ConvGeometry(
            channels: 2, height: 5, width: 4, kernelH: 1, kernelW: 1, strideH: 2, strideW: 2, padH: 0, padW: 0),
        ConvGeometry(
            channels: 2, height: 4, width: 4, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 2, padW: 2),
    ]

    func testIm2colMatchesReference() {
        for g in geometries {
            let image = (0..<(g.channels * g.height * g.width)).map { Float($0 % 13) - 6 }
            var fast = [Float](repeating: .nan, count: g.colRows * g.colCols)
            var slow = [Float](repeating: .nan, count: g.colRows * g.colCols)
            im2col(image, g, &fast)
            referenceIm2col(image, g, &slow)
            XCTAssertEqual(fast, slow, "\(g)")
        }
    }

    func testCol2imMatchesReferenceAndIsTheAdjoint() {
        for g in geometries {
            let col = (0..<(g.colRows * g.colCols)).map { Float($0 % 7) - 3 }
            let base = (0..<(g.channels * g.height * g.width)).map { Float($0 % 5) }
            var fast = base
            var slow = base
            col2im(col, g, &fast)
            referenceCol2im(col, g, &slow)
            XCTAssertEqual(fast, slow, "\(g)")
            // <im2col(x), c> == <x, col2im(c)>
            let x = (0..<base.count).map { Float(($0 * 7) % 11) - 5 }
            var cx = [Float](repeating: 0, count: col.count)
            im2col(x, g, &cx)
            var back = [Float](repeating: 0, count: x.count)
            col2im(col, g, &back)
            let lhs = zip(cx, col).reduce(0.0) { $0 + Double($1.0 * $1.1) }
            let rhs = zip(x, back).reduce(0.0) { $0 + Double($1.0 * $1.1) }
            XCTAssertEqual(lhs, rhs, accuracy: 1e-6, "\(g)")
        }
    }
}
