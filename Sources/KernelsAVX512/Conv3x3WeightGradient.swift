// Compiled for AVX-512 like the rest of this target; called only after `Kernels` has checked
// the CPU.

/// Nine 16-lane partial sums, one per tap of a 3x3 window.
private struct TapSums {
    var t0 = SIMD16<Float>(), t1 = SIMD16<Float>(), t2 = SIMD16<Float>()
    var t3 = SIMD16<Float>(), t4 = SIMD16<Float>(), t5 = SIMD16<Float>()
    var t6 = SIMD16<Float>(), t7 = SIMD16<Float>(), t8 = SIMD16<Float>()

    /// Adds `d * x[tap]` where `x[tap]` is the input stream shifted by the tap's offset.
    @inline(__always)
    mutating func add(_ d: SIMD16<Float>, _ x: UnsafePointer<Float>, _ rowStride: Int) {
        let r1 = x + rowStride, r2 = x + 2 * rowStride
        t0.addProduct(d, load16(x)); t1.addProduct(d, load16(x + 1)); t2.addProduct(d, load16(x + 2))
        t3.addProduct(d, load16(r1)); t4.addProduct(d, load16(r1 + 1)); t5.addProduct(d, load16(r1 + 2))
        t6.addProduct(d, load16(r2)); t7.addProduct(d, load16(r2 + 1)); t8.addProduct(d, load16(r2 + 2))
    }

    /// Adds each tap's total to `out[0..<9]`, lanes summed in a fixed tree order.
    @inline(__always)
    func addTotals(_ out: UnsafeMutablePointer<Float>) {
        out[0] += total(t0); out[1] += total(t1); out[2] += total(t2)
        out[3] += total(t3); out[4] += total(t4); out[5] += total(t5)
        out[6] += total(t6); out[7] += total(t7); out[8] += total(t8)
    }
}

@inline(__always)
private func total(_ v: SIMD16<Float>) -> Float {
    let a = v.lowHalf + v.highHalf, b = a.lowHalf + a.highHalf
    return (b[0] + b[1]) + (b[2] + b[3])
}

/// Where one operand of `conv3x3WeightGradient` lives: `images` images `imageStride` floats
/// apart, each with its channels `planeStride` floats apart.
public struct PlaneStreams {
    /// Channel 0 of image 0.
    public let base: UnsafePointer<Float>
    /// Floats between consecutive images.
    public let imageStride: Int

    /// Streams starting at `base`, one image every `imageStride` floats.
    public init(_ base: UnsafePointer<Float>, imageStride: Int) {
        self.base = base; self.imageStride = imageStride
    }
}

/// Adds the weight gradient of a 3x3, stride-1, padding-1 convolution over `images` images to
/// `weightGradient [outChannels][inChannels][9]`:
/// `dW[co][ci][ky*3+kx] += sum_b sum_j gradients[b][co][j] * inputs[b][ci][j + ky*rowStride + kx]`
/// for `j` in `0..<positions`.
///
/// Both operands are in the padded-flat layout of `conv3x3Tiles` (channels `planeStride` apart):
/// `inputs` hold zero-bordered input images, `gradients` dL/dy at the output positions
/// `j = y * rowStride + x`, with zeros wherever `x >= W`, so those positions add nothing. Each
/// pair of output channels keeps 18 accumulators in registers over every image, and the last
/// partial 16-lane step of an image masks off the gradient lanes past `positions` (so what lies
/// there is never added). Inputs must be readable and finite `2 * rowStride + 17` floats past
/// each image's `positions`.
public func conv3x3WeightGradient(inputs: PlaneStreams, inChannels: Int, gradients: PlaneStreams, outChannels: Int,
                                  images: Int, planeStride: Int, positions: Int, rowStride: Int,
                                  weightGradient: UnsafeMutablePointer<Float>) {
    let full = positions / 16 * 16, rest = positions - full
    let keep = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) .< SIMD16<Int32>(repeating: Int32(rest))
    for ci in 0..<inChannels {
        var co = 0
        while co < outChannels {
            // An odd last channel runs as a pair with itself; only its first half is kept.
            let second = co + 1 < outChannels ? co + 1 : co
            var a = TapSums(), b = TapSums()
            // Pointers step from image to image (no multiplications between the short runs of
            // an 8x8 image's five steps).
            var x = inputs.base + ci * planeStride
            var d0 = gradients.base + co * planeStride, d1 = gradients.base + second * planeStride
            for _ in 0..<images {
                var j = 0
                while j < full {
                    a.add(load16(d0 + j), x + j, rowStride)
                    b.add(load16(d1 + j), x + j, rowStride)
                    j &+= 16
                }
                if rest > 0 {
                    a.add(load16(d0 + j).replacing(with: 0, where: .!keep), x + j, rowStride)
                    b.add(load16(d1 + j).replacing(with: 0, where: .!keep), x + j, rowStride)
                }
                x += inputs.imageStride; d0 += gradients.imageStride; d1 += gradients.imageStride
            }
            a.addTotals(weightGradient + (co * inChannels + ci) * 9)
            if second != co { b.addTotals(weightGradient + (second * inChannels + ci) * 9) }
            co += 2
        }
    }
}
