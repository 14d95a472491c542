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

/// Adds the weight gradient of a 3x3, stride-1, padding-1 convolution over a group of images to
/// `weightGradient [outChannels][inChannels][9]`:
/// `dW[co][ci][ky*3+kx] += sum_j gradients[co][j] * inputs[ci][j + ky*rowStride + kx]`.
///
/// Both operands are channel streams `streamStride` floats apart, in the padded-flat layout of
/// `conv3x3Tiles`: `inputs` hold the zero-bordered input images one after another, `gradients`
/// hold dL/dy at the output positions of the same layout, with zeros wherever a position is not
/// an output pixel, so those positions add nothing. Each pair of output channels keeps 18
/// accumulators in registers over the whole stream (`length` positions, a multiple of 16), and
/// `inputs` must be readable `2 * rowStride + 2` floats past it.
public func conv3x3WeightGradient(inputs: UnsafePointer<Float>, inChannels: Int,
                                  gradients: UnsafePointer<Float>, outChannels: Int,
                                  streamStride: Int, length: Int, rowStride: Int,
                                  weightGradient: UnsafeMutablePointer<Float>) {
    precondition(length % 16 == 0, "conv3x3WeightGradient: length \(length) is not a multiple of 16")
    for ci in 0..<inChannels {
        let x = inputs + ci * streamStride
        var co = 0
        while co < outChannels {
            // An odd last channel runs as a pair with itself; only its first half is kept.
            let second = co + 1 < outChannels ? co + 1 : co
            var a = TapSums(), b = TapSums()
            let d0 = gradients + co * streamStride, d1 = gradients + second * streamStride
            var j = 0
            while j < length {
                a.add(load16(d0 + j), x + j, rowStride)
                b.add(load16(d1 + j), x + j, rowStride)
                j += 16
            }
            a.addTotals(weightGradient + (co * inChannels + ci) * 9)
            if second != co { b.addTotals(weightGradient + (second * inChannels + ci) * 9) }
            co += 2
        }
    }
}
