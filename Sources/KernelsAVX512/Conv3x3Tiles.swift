// This module is compiled for AVX-512 (skylake-avx512: F, CD, BW, DQ, VL), so SIMD16<Float>
// becomes one zmm register. Nothing here may run unless the CPU has those extensions; the
// `Kernels` target checks before calling in.

/// The 48 consecutive outputs of one channel a tile computes, as three registers.
private struct TileRow {
    var a = SIMD16<Float>(), b = SIMD16<Float>(), c = SIMD16<Float>()

    @inline(__always)
    mutating func add(_ x0: SIMD16<Float>, _ x1: SIMD16<Float>, _ x2: SIMD16<Float>, _ w: Float) {
        let s = SIMD16<Float>(repeating: w)
        a.addProduct(x0, s); b.addProduct(x1, s); c.addProduct(x2, s)
    }

    @inline(__always)
    func store(_ p: UnsafeMutablePointer<Float>) {
        store16(a, p); store16(b, p + 16); store16(c, p + 32)
    }
}

/// Positions one tile covers along the padded, flattened output (three 16-lane registers).
public let conv3x3TileWidth = 48
/// Output channels one tile covers (eight rows of accumulators: 24 of the 32 zmm registers).
public let conv3x3TileChannels = 8

/// A 3x3, stride-1 convolution over images laid out "padded-flat": each channel is a plane of
/// `(H + 2) x rowStride` floats with the image inside a zero border, and output position
/// `j = y * rowStride + x` reads input positions `j + ky * rowStride + kx`. That turns the 2-D
/// window into nine shifted 1-D streams, so a tile is 8 output channels x 48 consecutive
/// positions held in registers for the whole reduction over channels and taps, and nothing is
/// unfolded (no im2col) or packed. Positions with `x >= W` are computed and discarded by the
/// caller.
///
/// - `input`: `channels` planes, `planeStride` floats apart, readable up to
///   `(channels - 1) * planeStride + tiles * 48 + 2 * rowStride + 2`.
/// - `weights`: `blocks` blocks of `[channels][9][8]` (tap-major inside a channel, the eight
///   output channels of the block innermost).
/// - `output`: `blocks * 8` rows of `outputStride >= tiles * 48` floats.
public func conv3x3Tiles(input: UnsafePointer<Float>, channels: Int, planeStride: Int, rowStride: Int,
                         weights: UnsafePointer<Float>, blocks: Int,
                         output: UnsafeMutablePointer<Float>, outputStride: Int, tiles: Int) {
    let blockWeights = channels * 9 * conv3x3TileChannels
    for block in 0..<blocks {
        let w = weights + block * blockWeights
        let out = output + block * conv3x3TileChannels * outputStride
        for t in 0..<tiles {
            tile(input + t * conv3x3TileWidth, channels, planeStride, rowStride, w,
                 out + t * conv3x3TileWidth, outputStride)
        }
    }
}

/// One 8 x 48 tile: the whole reduction over channels and the nine taps in registers.
@inline(never)
private func tile(_ input: UnsafePointer<Float>, _ channels: Int, _ planeStride: Int, _ rowStride: Int,
                  _ weights: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ outputStride: Int) {
    var r0 = TileRow(), r1 = TileRow(), r2 = TileRow(), r3 = TileRow()
    var r4 = TileRow(), r5 = TileRow(), r6 = TileRow(), r7 = TileRow()
    var plane = input
    var w = weights
    for _ in 0..<channels {
        for ky in 0..<3 {
            let row = plane + ky * rowStride
            for kx in 0..<3 {
                let p = row + kx
                let x0 = load16(p), x1 = load16(p + 16), x2 = load16(p + 32)
                r0.add(x0, x1, x2, w[0]); r1.add(x0, x1, x2, w[1])
                r2.add(x0, x1, x2, w[2]); r3.add(x0, x1, x2, w[3])
                r4.add(x0, x1, x2, w[4]); r5.add(x0, x1, x2, w[5])
                r6.add(x0, x1, x2, w[6]); r7.add(x0, x1, x2, w[7])
                w += conv3x3TileChannels
            }
        }
        plane += planeStride
    }
    r0.store(output); r1.store(output + outputStride)
    r2.store(output + 2 * outputStride); r3.store(output + 3 * outputStride)
    r4.store(output + 4 * outputStride); r5.store(output + 5 * outputStride)
    r6.store(output + 6 * outputStride); r7.store(output + 7 * outputStride)
}
