import XCTest

/// The weight gradient of a 3x3, padding-1 convolution with `stride`, summed plainly in Double:
/// `dW[co][ci][ky * 3 + kx] = sum over images b and outputs (y, x) of dy[b][co][y][x] *
/// in[b][ci][stride * y + ky - 1][stride * x + kx - 1]`, with the sum of the terms' magnitudes
/// for a rounding bound. The reference the weight-gradient kernels are checked against.
func plainWeightGradient(
    input: [Float], dy: [Float], images: Int, inChannels cin: Int, outChannels cout: Int,
    height h: Int, width w: Int, stride: Int
) -> (sum: [Double], magnitude: [Double]) {
    let oh = (h - 1) / stride + 1
    let ow = (w - 1) / stride + 1
    var sum = [Double](repeating: 0, count: cout * cin * 9)
    var magnitude = sum
    for b in 0..<images {
        for co in 0..<cout {
            for ci in 0..<cin {
                for tap in 0..<9 {
                    for y in 0..<oh {
                        for x in 0..<ow {
                            let iy = stride * y + tap / 3 - 1
                            let ix = stride * x + tap % 3 - 1
                            guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                            let term =
                                Double(dy[((b * cout + co) * oh + y) * ow + x])
                                * Double(input[((b * cin + ci) * h + iy) * w + ix])
                            sum[(co * cin + ci) * 9 + tap] += term
                            magnitude[(co * cin + ci) * 9 + tap] += abs(term)
                        }
                    }
                }
            }
        }
    }
    return (sum, magnitude)
}

/// `count` images of `imageSize` floats from `images`, each written by `pad` into its own slot of
/// a NaN-filled buffer, `stride` floats apart: a kernel that reads the gaps between slots, or a
/// float `pad` left unwritten, shows up as NaN in its result.
func paddedEach(
    _ images: [Float], count: Int, imageSize: Int, stride: Int,
    _ pad: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void
) -> [Float] {
    var buffer = [Float](repeating: .nan, count: count * stride)
    images.withUnsafeBufferPointer { src in
        buffer.withUnsafeMutableBufferPointer { dst in
            for b in 0..<count { pad(src.baseAddress! + b * imageSize, dst.baseAddress! + b * stride) }
        }
    }
    return buffer
}

/// Fails at the first element where `got[i]` differs from `want[i]` by more than `ulps` float32
/// ulps of `magnitude[i] + 1` (the sum of the absolute terms: sums taken in another order, or
/// through transforms, round by a few ulps of it).
func assertWithinUlps(
    _ got: [Float], _ want: [Double], magnitude: [Double], ulps: Float, _ what: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(got.count, want.count, what, file: file, line: line)
    for i in got.indices {
        let tol = ulps * Float.ulpOfOne * (Float(magnitude[i]) + 1)
        if !(abs(got[i] - Float(want[i])) <= tol) {
            XCTFail("\(what): element \(i) is \(got[i]), expected \(want[i]) ± \(tol)", file: file, line: line)
            return
        }
    }
}
