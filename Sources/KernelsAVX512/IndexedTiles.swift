// Compiled for AVX-512 like the rest of this target; called only after `Kernels` has checked
// the CPU.

/// `conv3x3Tiles` with the reduction's input streams listed instead of implied: step `r` of the
/// reduction reads the 48 floats at `input + tile start + offsets[r]` and multiplies them by the
/// eight weights `weights[block][r][0..<8]`. Any window, stride or layout whose output positions
/// are consecutive in each stream fits; rrmd uses it for stride-2 windows over the four
/// even/odd row and column phases of the input, where each of the nine taps reads one phase.
///
/// - `input`: readable at `offsets[r] + tiles * 48` for every `r`.
/// - `weights`: `blocks` blocks of `[steps][8]`.
/// - `output`: `blocks * 8` rows of `outputStride >= tiles * 48` floats.
public func indexedTiles(input: UnsafePointer<Float>, offsets: UnsafePointer<Int>, steps: Int,
                         weights: UnsafePointer<Float>, blocks: Int,
                         output: UnsafeMutablePointer<Float>, outputStride: Int, tiles: Int) {
    for block in 0..<blocks {
        let w = weights + block * steps * conv3x3TileChannels
        let out = output + block * conv3x3TileChannels * outputStride
        for t in 0..<tiles {
            indexedTile(input + t * conv3x3TileWidth, offsets, steps, w, out + t * conv3x3TileWidth, outputStride)
        }
    }
}

/// One 8 x 48 tile over the listed streams; 24 accumulators stay in registers throughout.
@inline(never)
private func indexedTile(_ input: UnsafePointer<Float>, _ offsets: UnsafePointer<Int>, _ steps: Int,
                         _ weights: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ outputStride: Int) {
    var a0 = SIMD16<Float>(), b0 = SIMD16<Float>(), c0 = SIMD16<Float>()
    var a1 = SIMD16<Float>(), b1 = SIMD16<Float>(), c1 = SIMD16<Float>()
    var a2 = SIMD16<Float>(), b2 = SIMD16<Float>(), c2 = SIMD16<Float>()
    var a3 = SIMD16<Float>(), b3 = SIMD16<Float>(), c3 = SIMD16<Float>()
    var a4 = SIMD16<Float>(), b4 = SIMD16<Float>(), c4 = SIMD16<Float>()
    var a5 = SIMD16<Float>(), b5 = SIMD16<Float>(), c5 = SIMD16<Float>()
    var a6 = SIMD16<Float>(), b6 = SIMD16<Float>(), c6 = SIMD16<Float>()
    var a7 = SIMD16<Float>(), b7 = SIMD16<Float>(), c7 = SIMD16<Float>()
    var w = weights
    for r in 0..<steps {
        let p = input + offsets[r]
        let x0 = load16(p), x1 = load16(p + 16), x2 = load16(p + 32)
        var s = SIMD16<Float>(repeating: w[0]); a0.addProduct(x0, s); b0.addProduct(x1, s); c0.addProduct(x2, s)
        s = SIMD16<Float>(repeating: w[1]); a1.addProduct(x0, s); b1.addProduct(x1, s); c1.addProduct(x2, s)
        s = SIMD16<Float>(repeating: w[2]); a2.addProduct(x0, s); b2.addProduct(x1, s); c2.addProduct(x2, s)
        s = SIMD16<Float>(repeating: w[3]); a3.addProduct(x0, s); b3.addProduct(x1, s); c3.addProduct(x2, s)
        s = SIMD16<Float>(repeating: w[4]); a4.addProduct(x0, s); b4.addProduct(x1, s); c4.addProduct(x2, s)
        s = SIMD16<Float>(repeating: w[5]); a5.addProduct(x0, s); b5.addProduct(x1, s); c5.addProduct(x2, s)
        s = SIMD16<Float>(repeating: w[6]); a6.addProduct(x0, s); b6.addProduct(x1, s); c6.addProduct(x2, s)
        s = SIMD16<Float>(repeating: w[7]); a7.addProduct(x0, s); b7.addProduct(x1, s); c7.addProduct(x2, s)
        w += conv3x3TileChannels
    }
    var o = output
    store16(a0, o); store16(b0, o + 16); store16(c0, o + 32); o += outputStride
    store16(a1, o); store16(b1, o + 16); store16(c1, o + 32); o += outputStride
    store16(a2, o); store16(b2, o + 16); store16(c2, o + 32); o += outputStride
    store16(a3, o); store16(b3, o + 16); store16(c3, o + 32); o += outputStride
    store16(a4, o); store16(b4, o + 16); store16(c4, o + 32); o += outputStride
    store16(a5, o); store16(b5, o + 16); store16(c5, o + 32); o += outputStride
    store16(a6, o); store16(b6, o + 16); store16(c6, o + 32); o += outputStride
    store16(a7, o); store16(b7, o + 16); store16(c7, o + 32)
}
