import KernelsAVX512

/// 3x3, stride-2, padding-1 convolution of one image on the AVX-512 tile kernel
/// (`indexedTiles`): the downsampling layers of a ResNet, which otherwise were the only
/// im2col + GEMM convolutions left in its forward pass.
///
/// A stride-2 window reads every other pixel, so `pad` splits the zero-padded image into its
/// four phases (even/odd padded row x even/odd padded column), each a plane of `(OH + 1) x
/// rowStride` with `rowStride = OW + 1`. Tap (ky, kx) then reads phase (ky % 2, kx % 2) at
/// (y + ky / 2, x + kx / 2): consecutive outputs read consecutive floats, as in
/// `DirectConv3x3`, and the one extra column per row is computed and dropped by `unpad`.
public struct StridedConv3x3: PaddedConvolution {
    /// Input and output channels, and the input image's height and width.
    public let inChannels, outChannels, height, width: Int
    /// The reduction's input streams (`streamOffsets()`), computed once per plan.
    private var offsets: [Int] = []

    /// A stride-2 convolution of `inChannels` planes of `height x width`.
    public init(inChannels: Int, outChannels: Int, height: Int, width: Int) {
        precondition(
            inChannels > 0 && outChannels > 0 && height > 0 && width > 0,
            "StridedConv3x3: \(inChannels)->\(outChannels) channels of \(height)x\(width) is empty")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.height = height
        self.width = width
        offsets = streamOffsets()
    }

    /// Output height and width: `floor((n + 2 - 3) / 2) + 1`.
    public var outHeight: Int { (height - 1) / 2 + 1 }
    public var outWidth: Int { (width - 1) / 2 + 1 }
    /// Phase-plane row length (one column more than the output).
    var rowStride: Int { outWidth + 1 }
    /// One phase plane: one row more than the output.
    var phaseStride: Int { (outHeight + 1) * rowStride }
    /// Tiles per output channel.
    var tiles: Int { (outHeight * rowStride + conv3x3TileWidth - 1) / conv3x3TileWidth }
    /// Floats per computed output channel.
    var outputStride: Int { tiles * conv3x3TileWidth }
    var blocks: Int { (outChannels + conv3x3TileChannels - 1) / conv3x3TileChannels }

    /// Floats `pad` writes: four phase planes per channel and the zeros the last tile reads past them.
    public var paddedInputCount: Int { 4 * inChannels * phaseStride + outputStride }
    /// Floats `run` writes.
    public var paddedOutputCount: Int { blocks * conv3x3TileChannels * outputStride }

    /// The reduction's streams in `packForward`'s order (channel, then tap ky * 3 + kx).
    func streamOffsets() -> [Int] {
        var list: [Int] = []
        list.reserveCapacity(inChannels * 9)
        for c in 0..<inChannels {
            for ky in 0..<3 {
                for kx in 0..<3 {
                    let phase = (ky % 2) * 2 + kx % 2
                    list.append((4 * c + phase) * phaseStride + (ky / 2) * rowStride + kx / 2)
                }
            }
        }
        return list
    }

    /// Packed weights of `W [Cout, Cin, 3, 3]` (the same order as `DirectConv3x3.packForward`).
    public func packForward(_ w: UnsafePointer<Float>) -> [Float] {
        DirectConv3x3(inChannels: inChannels, outChannels: outChannels, height: 1, width: 1).packForward(w)
    }

    /// Splits one image `[inChannels, height, width]` into its zero-padded phase planes, writing
    /// every float of `dst[0..<paddedInputCount]`.
    public func pad(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
        let rows = outHeight + 1
        let cols = rowStride
        for c in 0..<inChannels {
            let image = src + c * height * width
            for a in 0..<2 {
                // Phase (a, 1) holds padded columns 2v + 1 = image columns 2v (the even ones),
                // phase (a, 0) padded columns 2v = image columns 2v - 1 (a zero, then the odd ones).
                let evenPlane = dst + (4 * c + 2 * a + 1) * phaseStride
                let oddPlane = dst + (4 * c + 2 * a) * phaseStride
                for u in 0..<rows {
                    let even = evenPlane + u * cols
                    let odd = oddPlane + u * cols
                    let p = 2 * u + a - 1  // the image row this phase row holds, if any
                    if p < 0 || p >= height {
                        even.update(repeating: 0, count: cols)
                        odd.update(repeating: 0, count: cols)
                    } else {
                        splitColumns(image + p * width, even: even, odd: odd + 1)
                        odd[0] = 0
                        for v in (width + 1) / 2..<cols { even[v] = 0 }
                        for v in width / 2 + 1..<cols { odd[v] = 0 }
                    }
                }
            }
        }
        (dst + 4 * inChannels * phaseStride).update(repeating: 0, count: outputStride)
    }

    /// `even[i] = line[2i]` and `odd[i] = line[2i + 1]` for every such column of one image row.
    private func splitColumns(
        _ line: UnsafePointer<Float>, even: UnsafeMutablePointer<Float>, odd: UnsafeMutablePointer<Float>
    ) {
        var q = 0
        while q + 16 <= width {
            let v = UnsafeRawPointer(line + q).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(even + q / 2).storeBytes(of: v.evenHalf, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(odd + q / 2).storeBytes(of: v.oddHalf, as: SIMD8<Float>.self)
            q += 16
        }
        while q < width {
            if q % 2 == 0 { even[q / 2] = line[q] } else { odd[q / 2] = line[q] }
            q += 1
        }
    }

    /// Every output channel of one phase-split image into `dst[0..<paddedOutputCount]`.
    public func run(
        _ paddedInput: UnsafePointer<Float>, _ packedWeights: UnsafePointer<Float>,
        _ dst: UnsafeMutablePointer<Float>
    ) {
        offsets.withUnsafeBufferPointer { list in
            indexedTiles(
                input: paddedInput, offsets: list.baseAddress!, steps: inChannels * 9, weights: packedWeights,
                blocks: blocks, output: dst, outputStride: outputStride, positions: outHeight * rowStride)
        }
    }

    /// Writes the `[outChannels, outHeight, outWidth]` image from `run`'s output, adding `bias[c]`.
    public func unpad(_ src: UnsafePointer<Float>, bias: UnsafePointer<Float>?, _ dst: UnsafeMutablePointer<Float>) {
        let oh = outHeight
        let ow = outWidth
        for c in 0..<outChannels {
            let plane = src + c * outputStride
            let out = dst + c * oh * ow
            let b = bias?[c] ?? 0
            for y in 0..<oh {
                let s = plane + y * rowStride
                let d = out + y * ow
                if bias == nil { Vector.copy(s, d, ow) } else { for x in 0..<ow { d[x] = s[x] + b } }
            }
        }
    }
}
