import KernelsAVX512

/// The input gradient of a 3x3, stride-2, padding-1 convolution on the AVX-512 tiles (an
/// attack's backward runs it through every downsampling layer).
///
/// Input pixel (p, q) sits at padded position (P, Q) = (p + 1, q + 1), in phase (P % 2, Q % 2) at
/// (u, v) = (P / 2, Q / 2). Output (y, x) reads it through tap (ky, kx) exactly when
/// ky = P - 2y and kx = Q - 2x, so phase (a, b) of dL/dx is
/// `sum_co sum_{ky % 2 = a, kx % 2 = b} W[co][ci][ky][kx] * dy[co](u - ky / 2, v - kx / 2)`:
/// a small stride-1 correlation of dy (4, 2, 2 or 1 taps per channel) for each phase. With dy
/// laid out with a zero row above and below and a zero column in front (row length OW + 1, the
/// phase plane's), each phase plane's positions are consecutive outputs and `indexedTiles`
/// computes them; `inputGradient` then scatters the four phases back into the image.
extension StridedConv3x3 {
    /// The taps of phase `(a, b)`: those with `ky % 2 == a` and `kx % 2 == b`.
    static func taps(phase: Int) -> [(ky: Int, kx: Int)] {
        let a = phase / 2
        let b = phase % 2
        return [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)].filter {
            $0.0 % 2 == a && $0.1 % 2 == b
        }
    }

    /// One padded dy channel: rows 0 and OH + 1 and column 0 are zero.
    var gradientPlaneStride: Int { (outHeight + 2) * rowStride }
    /// Tiles covering one phase plane.
    var gradientTiles: Int { (phaseStride + conv3x3TileWidth - 1) / conv3x3TileWidth }
    /// Input-channel blocks of the gradient (its output channels).
    var gradientBlocks: Int { (inChannels + conv3x3TileChannels - 1) / conv3x3TileChannels }

    /// Floats `padGradient` writes: every dy channel plus the zeros the last tile reads past them.
    public var paddedGradientCount: Int { outChannels * gradientPlaneStride + gradientTiles * conv3x3TileWidth }
    /// Floats of scratch `inputGradient` needs for one phase's result.
    public var phaseResultCount: Int { gradientBlocks * conv3x3TileChannels * gradientTiles * conv3x3TileWidth }

    /// The four phases' weights of a layer `W [outChannels, inChannels, 3, 3]`, each in
    /// `indexedTiles` order: `[block of 8 input channels][co][tap of the phase][8]`.
    public func packInputGradient(_ w: UnsafePointer<Float>) -> [[Float]] {
        (0..<4).map { phase in
            let taps = Self.taps(phase: phase)
            let steps = outChannels * taps.count
            let lanes = conv3x3TileChannels
            var packed = [Float](repeating: 0, count: gradientBlocks * steps * lanes)
            for ci in 0..<inChannels {
                for co in 0..<outChannels {
                    for (t, tap) in taps.enumerated() {
                        packed[((ci / lanes) * steps + co * taps.count + t) * lanes + ci % lanes] =
                            w[((co * inChannels + ci) * 3 + tap.ky) * 3 + tap.kx]
                    }
                }
            }
            return packed
        }
    }

    /// The streams each phase reads, in `packInputGradient`'s order.
    public func inputGradientOffsets() -> [[Int]] {
        (0..<4).map { phase in
            (0..<outChannels).flatMap { co in
                Self.taps(phase: phase).map { co * gradientPlaneStride + (1 - $0.ky / 2) * rowStride + (1 - $0.kx / 2) }
            }
        }
    }

    /// Copies one image's dL/dy `[outChannels, OH, OW]` into the zero-bordered layout, writing
    /// every float of `dst[0..<paddedGradientCount]`.
    public func padGradient(_ dy: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
        let rs = rowStride
        let oh = outHeight
        let ow = outWidth
        for c in 0..<outChannels {
            let plane = dst + c * gradientPlaneStride
            let src = dy + c * oh * ow
            plane.update(repeating: 0, count: rs)
            for y in 0..<oh {
                let row = plane + (y + 1) * rs
                row[0] = 0
                Vector.copy(src + y * ow, row + 1, ow)
            }
            (plane + (oh + 1) * rs).update(repeating: 0, count: rs)
        }
        (dst + outChannels * gradientPlaneStride).update(repeating: 0, count: gradientTiles * conv3x3TileWidth)
    }

    /// dL/dx `[inChannels, height, width]` of one image from its padded dy: each phase on the
    /// tiles into `scratch` (`phaseResultCount` floats), then scattered into `dx`.
    public func inputGradient(
        _ paddedDy: UnsafePointer<Float>, weights: [[Float]], offsets: [[Int]],
        scratch: UnsafeMutablePointer<Float>, _ dx: UnsafeMutablePointer<Float>
    ) {
        let stride = gradientTiles * conv3x3TileWidth
        let rs = rowStride
        for phase in 0..<4 {
            let a = phase / 2
            let b = phase % 2
            weights[phase].withUnsafeBufferPointer { wp in
                offsets[phase].withUnsafeBufferPointer { op in
                    indexedTiles(
                        input: paddedDy, offsets: op.baseAddress!, steps: op.count, weights: wp.baseAddress!,
                        blocks: gradientBlocks, output: scratch, outputStride: stride, positions: phaseStride)
                }
            }
            // Padded row P = 2u + a is image row P - 1; likewise for columns.
            for ci in 0..<inChannels {
                let plane = scratch + ci * stride
                let image = dx + ci * height * width
                var u = 1 - a
                while 2 * u + a - 1 < height {
                    let src = plane + u * rs
                    let dst = image + (2 * u + a - 1) * width
                    var v = 1 - b
                    while 2 * v + b - 1 < width {
                        dst[2 * v + b - 1] = src[v]
                        v += 1
                    }
                    u += 1
                }
            }
        }
    }
}
