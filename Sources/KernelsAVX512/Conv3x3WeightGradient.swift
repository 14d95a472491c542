// Compiled for AVX-512 like the rest of this target; called only after `Kernels` has checked
// the CPU.

/// Nine 16-lane partial sums, one per tap of a 3x3 window.
private struct TapSums {
    var t0 = SIMD16<Float>(), t1 = SIMD16<Float>(), t2 = SIMD16<Float>()
    var t3 = SIMD16<Float>(), t4 = SIMD16<Float>(), t5 = SIMD16<Float>()
    var t6 = SIMD16<Float>(), t7 = SIMD16<Float>(), t8 = SIMD16<Float>()

    /// Adds `d * x[tap]` where `x[tap]` is the stream of `tap` at position `j`.
    @inline(__always)
    mutating func add<T: TapStreams>(_ d: SIMD16<Float>, _ x: T, _ j: Int) {
        t0.addProduct(d, load16(x.tap0 + j))
        t1.addProduct(d, load16(x.tap1 + j))
        t2.addProduct(d, load16(x.tap2 + j))
        t3.addProduct(d, load16(x.tap3 + j))
        t4.addProduct(d, load16(x.tap4 + j))
        t5.addProduct(d, load16(x.tap5 + j))
        t6.addProduct(d, load16(x.tap6 + j))
        t7.addProduct(d, load16(x.tap7 + j))
        t8.addProduct(d, load16(x.tap8 + j))
    }

    /// Adds each tap's total to `out[0..<9]`, lanes summed in a fixed tree order.
    @inline(__always)
    func addTotals(_ out: UnsafeMutablePointer<Float>) {
        out[0] += total(t0)
        out[1] += total(t1)
        out[2] += total(t2)
        out[3] += total(t3)
        out[4] += total(t4)
        out[5] += total(t5)
        out[6] += total(t6)
        out[7] += total(t7)
        out[8] += total(t8)
    }
}

@inline(__always)
private func total(_ v: SIMD16<Float>) -> Float {
    let a = v.lowHalf + v.highHalf
    let b = a.lowHalf + a.highHalf
    return (b[0] + b[1]) + (b[2] + b[3])
}

/// Where one operand of `conv3x3WeightGradient` lives: `images` images `imageStride` floats
/// apart, each with its channels `channelStride` floats apart.
public struct PlaneStreams {
    /// Channel 0 of image 0.
    public let base: UnsafePointer<Float>
    /// Floats between consecutive images and between consecutive channels of an image.
    public let imageStride, channelStride: Int

    /// Streams starting at `base`, one image every `imageStride` floats and one channel every
    /// `channelStride`.
    public init(_ base: UnsafePointer<Float>, imageStride: Int, channelStride: Int) {
        self.base = base
        self.imageStride = imageStride
        self.channelStride = channelStride
    }
}

/// The nine input streams of one input channel that the taps of a 3x3 window read, output
/// position `j` of tap `k` being `tap<k>[j]`.
protocol TapStreams {
    var tap0: UnsafePointer<Float> { get }
    var tap1: UnsafePointer<Float> { get }
    var tap2: UnsafePointer<Float> { get }
    var tap3: UnsafePointer<Float> { get }
    var tap4: UnsafePointer<Float> { get }
    var tap5: UnsafePointer<Float> { get }
    var tap6: UnsafePointer<Float> { get }
    var tap7: UnsafePointer<Float> { get }
    var tap8: UnsafePointer<Float> { get }
    /// The same taps `floats` further on.
    func advanced(by floats: Int) -> Self
}

/// A stride-1 window over the padded-flat layout: tap (ky, kx) at `ky * rowStride + kx`.
struct RowTaps: TapStreams {
    let row0, row1, row2: UnsafePointer<Float>
    @inline(__always) init(_ x: UnsafePointer<Float>, rowStride: Int) {
        row0 = x
        row1 = x + rowStride
        row2 = x + 2 * rowStride
    }
    var tap0: UnsafePointer<Float> { @inline(__always) get { row0 } }
    var tap1: UnsafePointer<Float> { @inline(__always) get { row0 + 1 } }
    var tap2: UnsafePointer<Float> { @inline(__always) get { row0 + 2 } }
    var tap3: UnsafePointer<Float> { @inline(__always) get { row1 } }
    var tap4: UnsafePointer<Float> { @inline(__always) get { row1 + 1 } }
    var tap5: UnsafePointer<Float> { @inline(__always) get { row1 + 2 } }
    var tap6: UnsafePointer<Float> { @inline(__always) get { row2 } }
    var tap7: UnsafePointer<Float> { @inline(__always) get { row2 + 1 } }
    var tap8: UnsafePointer<Float> { @inline(__always) get { row2 + 2 } }
    @inline(__always) func advanced(by floats: Int) -> RowTaps {
        RowTaps(row0 + floats, rowStride: row1 - row0)
    }
}

/// A stride-2 window over the four phase planes of `StridedConv3x3`: tap (ky, kx) reads phase
/// (ky % 2, kx % 2) at `(ky / 2) * rowStride + kx / 2`.
struct PhaseTaps: TapStreams {
    let p00, p01, p10, p11: UnsafePointer<Float>
    let rowStride: Int
    @inline(__always) init(_ x: UnsafePointer<Float>, phaseStride: Int, rowStride: Int) {
        p00 = x
        p01 = x + phaseStride
        p10 = x + 2 * phaseStride
        p11 = x + 3 * phaseStride
        self.rowStride = rowStride
    }
    var tap0: UnsafePointer<Float> { @inline(__always) get { p00 } }
    var tap1: UnsafePointer<Float> { @inline(__always) get { p01 } }
    var tap2: UnsafePointer<Float> { @inline(__always) get { p00 + 1 } }
    var tap3: UnsafePointer<Float> { @inline(__always) get { p10 } }
    var tap4: UnsafePointer<Float> { @inline(__always) get { p11 } }
    var tap5: UnsafePointer<Float> { @inline(__always) get { p10 + 1 } }
    var tap6: UnsafePointer<Float> { @inline(__always) get { p00 + rowStride } }
    var tap7: UnsafePointer<Float> { @inline(__always) get { p01 + rowStride } }
    var tap8: UnsafePointer<Float> { @inline(__always) get { p00 + rowStride + 1 } }
    @inline(__always) func advanced(by floats: Int) -> PhaseTaps {
        PhaseTaps(p00 + floats, phaseStride: p01 - p00, rowStride: rowStride)
    }
}

/// Adds the weight gradient of a 3x3, stride-1, padding-1 convolution over `images` images to
/// `weightGradient [outChannels][inChannels][9]`:
/// `dW[co][ci][ky*3+kx] += sum_b sum_j gradients[b][co][j] * inputs[b][ci][j + ky*rowStride + kx]`
/// for `j` in `0..<positions`.
///
/// Both operands are in the padded-flat layout of `conv3x3Tiles`: `inputs` hold zero-bordered
/// input images, `gradients` dL/dy at the output positions `j = y * rowStride + x`, with zeros
/// wherever `x >= W`, so those positions add nothing. Each pair of output channels keeps 18
/// accumulators in registers over every image, and the last partial 16-lane step of an image
/// masks off the gradient lanes past `positions` (so what lies there is never added). Inputs
/// must be readable and finite `2 * rowStride + 17` floats past each channel's `positions`.
public func conv3x3WeightGradient(
    inputs: PlaneStreams, inChannels: Int, gradients: PlaneStreams, outChannels: Int,
    images: Int, positions: Int, rowStride: Int,
    weightGradient: UnsafeMutablePointer<Float>
) {
    weightGradient3x3(
        inputs: inputs, inChannels: inChannels, gradients: gradients, outChannels: outChannels,
        images: images, positions: positions, weightGradient: weightGradient
    ) {
        RowTaps($0, rowStride: rowStride)
    }
}

/// `conv3x3WeightGradient` for a 3x3, stride-2, padding-1 convolution: `inputs` hold each
/// input channel as `StridedConv3x3` splits it, four phase planes `phaseStride` floats apart
/// with rows of `rowStride = OW + 1`, and `gradients` dL/dy at the output positions
/// `j = y * rowStride + x` (zeros where `x >= OW`). Inputs must be readable and finite
/// `3 * phaseStride + rowStride + 17` floats past each channel's start plus `positions`.
public func stridedConv3x3WeightGradient(
    inputs: PlaneStreams, inChannels: Int, gradients: PlaneStreams, outChannels: Int,
    images: Int, positions: Int, phaseStride: Int, rowStride: Int,
    weightGradient: UnsafeMutablePointer<Float>
) {
    weightGradient3x3(
        inputs: inputs, inChannels: inChannels, gradients: gradients, outChannels: outChannels,
        images: images, positions: positions, weightGradient: weightGradient
    ) {
        PhaseTaps($0, phaseStride: phaseStride, rowStride: rowStride)
    }
}

/// The loop both weight gradients share; `taps(channelStart)` gives an input channel's streams.
@inline(__always)
private func weightGradient3x3<T: TapStreams>(
    inputs: PlaneStreams, inChannels: Int, gradients: PlaneStreams, outChannels: Int,
    images: Int, positions: Int, weightGradient: UnsafeMutablePointer<Float>,
    _ taps: (UnsafePointer<Float>) -> T
) {
    let full = positions / 16 * 16
    let rest = positions - full
    let keep =
        SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) .< SIMD16<Int32>(repeating: Int32(rest))
    for ci in 0..<inChannels {
        var co = 0
        while co < outChannels {
            // An odd last channel runs as a pair with itself; only its first half is kept.
            let second = co + 1 < outChannels ? co + 1 : co
            var a = TapSums()
            var b = TapSums()
            // Pointers step from image to image (no multiplications between the short runs of
            // an 8x8 image's five steps).
            var x = taps(inputs.base + ci * inputs.channelStride)
            var d0 = gradients.base + co * gradients.channelStride
            var d1 = gradients.base + second * gradients.channelStride
            for _ in 0..<images {
                var j = 0
                while j < full {
                    a.add(load16(d0 + j), x, j)
                    b.add(load16(d1 + j), x, j)
                    j &+= 16
                }
                if rest > 0 {
                    a.add(load16(d0 + j).replacing(with: 0, where: .!keep), x, j)
                    b.add(load16(d1 + j).replacing(with: 0, where: .!keep), x, j)
                }
                x = x.advanced(by: inputs.imageStride)
                d0 += gradients.imageStride
                d1 += gradients.imageStride
            }
            a.addTotals(weightGradient + (co * inChannels + ci) * 9)
            if second != co { b.addTotals(weightGradient + (second * inChannels + ci) * 9) }
            co += 2
        }
    }
}
