/// The weight gradient of a 3x3, padding-1 convolution with `stride`, summed plainly in Double:
/// `dW[co][ci][ky * 3 + kx] = sum over images b and outputs (y, x) of dy[b][co][y][x] *
/// in[b][ci][stride * y + ky - 1][stride * x + kx - 1]`, with the sum of the terms' magnitudes
/// for a rounding bound. The reference the weight-gradient kernels are checked against.
func plainWeightGradient(input: [Float], dy: [Float], images: Int, inChannels cin: Int, outChannels cout: Int,
                         height h: Int, width w: Int, stride: Int) -> (sum: [Double], magnitude: [Double]) {
    let oh = (h - 1) / stride + 1, ow = (w - 1) / stride + 1
    var sum = [Double](repeating: 0, count: cout * cin * 9), magnitude = sum
    for b in 0..<images {
        for co in 0..<cout {
            for ci in 0..<cin {
                for tap in 0..<9 {
                    for y in 0..<oh {
                        for x in 0..<ow {
                            let iy = stride * y + tap / 3 - 1, ix = stride * x + tap % 3 - 1
                            guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                            let term = Double(dy[((b * cout + co) * oh + y) * ow + x]) * Double(input[((b * cin + ci) * h + iy) * w + ix])
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
