import Foundation
import KernelsAVX512

/// A convolution of one image computed as "pad into the kernel's layout, run, unpad": what
/// `Conv2d` needs to drive `DirectConv3x3` and `StridedConv3x3` the same way.
public protocol PaddedConvolution: Sendable {
    /// Floats `pad` writes and `run` reads.
    var paddedInputCount: Int { get }
    /// Floats `run` writes and `unpad` reads.
    var paddedOutputCount: Int { get }
    /// Weights `W [Cout, Cin, 3, 3]` in the order `run` reads them.
    func packForward(_ w: UnsafePointer<Float>) -> [Float]
    /// One image `[Cin, H, W]` into the kernel's layout.
    func pad(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>)
    /// Every output channel of one padded image.
    func run(
        _ paddedInput: UnsafePointer<Float>, _ packedWeights: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>)
    /// The `[Cout, OH, OW]` image from `run`'s output, plus `bias[c]` when given.
    func unpad(_ src: UnsafePointer<Float>, bias: UnsafePointer<Float>?, _ dst: UnsafeMutablePointer<Float>)
}

/// 3x3, stride-1, padding-1 convolution of one image computed directly (`conv3x3Tiles`), with
/// no im2col matrix and no GEMM packing: the narrow layers of ResNet-20 (16-64 channels) spent
/// as long unfolding and packing as multiplying. Needs AVX-512; `isAvailable` says whether this
/// CPU has it and the operator has not switched it off (`RRMD_DIRECT_CONV=0`).
///
/// An image goes through three steps on one worker: `pad` copies it into the padded-flat layout
/// the kernel reads, `run` computes every output channel, `unpad` drops the column per row
/// that the layout computes in excess and adds the bias.
public struct DirectConv3x3: PaddedConvolution {
    /// Input and output channels, and the image's height and width.
    public let inChannels, outChannels, height, width: Int

    /// True when this CPU can run the kernel and `RRMD_DIRECT_CONV` is not `0`.
    public static let isAvailable: Bool = {
        if let setting = ProcessInfo.processInfo.environment["RRMD_DIRECT_CONV"], setting == "0" { return false }
        return supportsAVX512(BLASKernel.cpuInfo())
    }()

    /// True when `/proc/cpuinfo` text lists every AVX-512 subset the kernel module is compiled for.
    public static func supportsAVX512(_ cpuinfo: String) -> Bool {
        let flags = Set((BLASKernel.firstProcessor(cpuinfo)["flags"] ?? "").split(separator: " "))
        return ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy { flags.contains(Substring($0)) }
    }

    /// A convolution of `inChannels` planes of `height x width` into `outChannels` planes.
    public init(inChannels: Int, outChannels: Int, height: Int, width: Int) {
        precondition(
            inChannels > 0 && outChannels > 0 && height > 0 && width > 0,
            "DirectConv3x3: \(inChannels)->\(outChannels) channels of \(height)x\(width) is empty")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.height = height
        self.width = width
    }

    /// Padded row length: one zero column in front of each row, which is also the zero the row
    /// before reads past its right edge (one discarded output column per row instead of two).
    var rowStride: Int { width + 1 }
    /// One padded input plane: a zero row above and below, rounded up to whole 64-byte lines so
    /// that every plane of an aligned buffer starts aligned (the weight gradient's loads of its
    /// first tap then never straddle two lines).
    var planeStride: Int { ((height + 2) * rowStride + 15) / 16 * 16 }
    /// Floats per padded output channel: the `height * rowStride` flat positions rounded up to
    /// whole 16-lane registers, as the tiles write them.
    var outputStride: Int { (height * rowStride + 15) / 16 * 16 }
    /// Output channels rounded up to whole tiles; the extra ones have zero weights.
    var blocks: Int { (outChannels + conv3x3TileChannels - 1) / conv3x3TileChannels }

    /// Floats `pad` writes: the padded planes plus the zeros the last tile reads past them, or
    /// that Winograd's last tiles read, when its grid runs past the image (`WinogradGrid`).
    public var paddedInputCount: Int {
        let tiles = outputStride + 2 * rowStride + 2
        let winograd = winogradGrid?.readExtent(rowStride: rowStride) ?? 0
        return (inChannels - 1) * planeStride + max(tiles, winograd)
    }
    /// Floats `run` writes.
    public var paddedOutputCount: Int { blocks * conv3x3TileChannels * outputStride }
    /// Floats `packWeights` returns.
    public var packedWeightCount: Int { blocks * inChannels * 9 * conv3x3TileChannels }

    /// Weights in the kernel's order, `[block][ci][tap][8]`, from `weight(co, ci, tap)` with
    /// tap = ky * 3 + kx; output channels past `outChannels` get zeros.
    public func packWeights(_ weight: (_ co: Int, _ ci: Int, _ tap: Int) -> Float) -> [Float] {
        var packed = [Float](repeating: 0, count: packedWeightCount)
        let lanes = conv3x3TileChannels
        for co in 0..<outChannels {
            let block = co / lanes
            let lane = co % lanes
            for ci in 0..<inChannels {
                for tap in 0..<9 { packed[((block * inChannels + ci) * 9 + tap) * lanes + lane] = weight(co, ci, tap) }
            }
        }
        return packed
    }

    /// Packed weights of `W [Cout, Cin, 3, 3]` for the forward convolution.
    public func packForward(_ w: UnsafePointer<Float>) -> [Float] {
        packWeights { co, ci, tap in w[(co * inChannels + ci) * 9 + tap] }
    }

    /// Packed weights of the input-gradient convolution of a layer whose forward weights are
    /// `W [inChannels', outChannels', 3, 3]` with this plan's channel roles swapped: the gradient
    /// takes the forward's output channels as input and the window flipped.
    public func packInputGradient(_ w: UnsafePointer<Float>) -> [Float] {
        packWeights { co, ci, tap in w[(ci * outChannels + co) * 9 + (8 - tap)] }
    }

    /// Copies one image `[inChannels, height, width]` into the padded-flat layout, writing every
    /// float of `dst[0..<paddedInputCount]` (borders and tail are zero).
    public func pad(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
        let hw = height * width
        let count = paddedInputCount
        for c in 0..<inChannels {
            for y in 0..<height { Vector.copy(src + c * hw + y * width, rowStart(dst, c, y), rowLength(c, y, count)) }
        }
        zeroBorders(dst)
    }

    /// `pad` of `(mask > 0 ? dy : 0) * factors[c]` (`Vector.maskedScale`, so the same bits): an
    /// inference BatchNorm's input gradient after a ReLU, computed as this convolution's input
    /// gradient reads it instead of in a pass of its own.
    public func padMaskedScaled(
        _ dy: UnsafePointer<Float>, mask: UnsafePointer<Float>, factors: UnsafePointer<Float>,
        _ dst: UnsafeMutablePointer<Float>
    ) {
        let hw = height * width
        let count = paddedInputCount
        for c in 0..<inChannels {
            for y in 0..<height {
                let offset = c * hw + y * width
                Vector.maskedScale(mask + offset, dy + offset, factors[c], rowStart(dst, c, y), rowLength(c, y, count))
            }
        }
        zeroBorders(dst)
    }

    /// Floats `pad` moves for image row `y` of channel `c`: the row rounded up to whole 16-lane
    /// vectors where that stays inside this image and inside the padded buffer (`count`, that is
    /// `paddedInputCount`), else the row.
    /// Narrow rows (28, 14 or 7 floats) then go without a scalar tail, whose per-float branch on
    /// the ReLU mask cost more than the vectors. What the excess writes lies ahead of the row:
    /// its border, the next rows, for a channel's last rows the gap and the next plane's first
    /// rows; all of it is written again later, by the rows after it or by `zeroBorders`, which
    /// runs last.
    @inline(__always)
    private func rowLength(_ c: Int, _ y: Int, _ count: Int) -> Int {
        let whole = (width + 15) / 16 * 16
        let read = (c * height + y) * width + whole
        let written = c * planeStride + (y + 1) * rowStride + 1 + whole
        return read <= inChannels * height * width && written <= count ? whole : width
    }

    /// Where image row `y` of channel `c` starts in the padded-flat layout.
    @inline(__always)
    private func rowStart(_ dst: UnsafeMutablePointer<Float>, _ c: Int, _ y: Int) -> UnsafeMutablePointer<Float> {
        dst + c * planeStride + (y + 1) * rowStride + 1
    }

    /// Writes every zero of the padded-flat layout: the borders around each plane and the tail.
    private func zeroBorders(_ dst: UnsafeMutablePointer<Float>) {
        let rs = rowStride
        dst.update(repeating: 0, count: rs + 1)
        for c in 0..<inChannels {
            let plane = dst + c * planeStride
            // The zero in front of each image row after the first, which is also the right
            // border of the row before it.
            for y in 1..<height { plane[(y + 1) * rs] = 0 }
            // The bottom border row (also the last image row's right border), the gap up to the
            // next plane, its top border row and the zero in front of its first image row.
            let after = plane + (height + 1) * rs
            let end = c + 1 < inChannels ? plane + planeStride + rs + 1 : dst + paddedInputCount
            after.update(repeating: 0, count: end - after)
        }
    }

    /// Every output channel of one padded image into `dst[0..<paddedOutputCount]`.
    public func run(
        _ paddedInput: UnsafePointer<Float>, _ packedWeights: UnsafePointer<Float>,
        _ dst: UnsafeMutablePointer<Float>
    ) {
        conv3x3Tiles(
            input: paddedInput, channels: inChannels, planeStride: planeStride, rowStride: rowStride,
            weights: packedWeights, blocks: blocks, output: dst, outputStride: outputStride,
            positions: height * rowStride)
    }

    /// Writes the `[outChannels, height, width]` image from `run`'s output, adding `bias[c]`.
    public func unpad(_ src: UnsafePointer<Float>, bias: UnsafePointer<Float>?, _ dst: UnsafeMutablePointer<Float>) {
        let hw = height * width
        for c in 0..<outChannels {
            let plane = src + c * outputStride
            let out = dst + c * hw
            if let bias {
                let b = bias[c]
                for y in 0..<height {
                    let s = plane + y * rowStride
                    let d = out + y * width
                    for x in 0..<width { d[x] = s[x] + b }
                }
            } else {
                for y in 0..<height { Vector.copy(plane + y * rowStride, out + y * width, width) }
            }
        }
    }
}
