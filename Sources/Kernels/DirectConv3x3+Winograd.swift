import Foundation
import KernelsAVX512

/// `DirectConv3x3.run` + `unpad` by Winograd F(2x2, 3x3) (`winogradInput`, `winogradOutput`):
/// each 2x2 block of outputs takes 16 multiplications per channel pair instead of 36. The
/// products are 16 small matrix products, one per transform position, run on `indexedTiles`
/// (8 output channels x 48 tiles per register block, the reduction over input channels), over
/// the tiles of a few images at once so that 8x8 images (16 tiles each) still fill whole blocks.
/// It reads the same padded layout as `run` (`paddedInputCount` covers the reads of a grid
/// that runs past the image), so the direct weight gradient can share it.
///
/// Rounding differs from the direct sum's (the transforms add and subtract inputs before the
/// products), by a few float32 ulps of the terms' magnitudes: the model goldens agree within
/// the same tolerance.
extension DirectConv3x3 {
    /// True when this image size runs on Winograd (it has a `WinogradGrid`: up to 32 wide, the
    /// 2x2 tiles filling 16 lanes with at most a third more outputs than the image) and
    /// `RRMD_WINOGRAD` is not `0`.
    public var usesWinograd: Bool { DirectConv3x3.winogradEnabled && winogradGrid != nil }

    /// The tiles Winograd lays over this plan's images, when any fit.
    public var winogradGrid: WinogradGrid? { WinogradGrid(height: height, width: width) }

    /// The operator's switch: `RRMD_WINOGRAD=0` keeps every 3x3 stride-1 layer on the direct tiles.
    nonisolated(unsafe) public static var winogradEnabled: Bool = {
        ProcessInfo.processInfo.environment["RRMD_WINOGRAD"] != "0"
    }()

    /// 2x2 output tiles per image, the grid's ghosts included.
    var winogradTiles: Int { winogradGrid?.tiles ?? 0 }

    /// Images transformed together: enough tiles for whole 48-wide blocks when images are small,
    /// one at a time for 32x32 images (whose 256 tiles already fill five).
    public var winogradGroup: Int { winogradTiles >= 256 ? 1 : 3 }

    /// Floats of scratch `runWinograd` needs for `winogradGroup` images.
    public var winogradScratchCount: Int {
        16 * ((inChannels + blocks * conv3x3TileChannels) * winogradGroup * winogradTiles + 2 * Self.xiSkew)
    }

    /// Floats added between transform positions in scratch: their 16 streams are otherwise a
    /// multiple of 4 KiB apart (16 channels x 256 tiles), all in one L1 set, and evict each other.
    static let xiSkew = 32

    /// Weights in the transformed domain, `[xi][block][ci][8]`: `U = G g G^T` for each channel
    /// pair's window `g`, with `G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]`
    /// written out and computed in Double, rounded once. `window(co, ci)` points at the pair's
    /// nine weights, read in tap order (`ky * 3 + kx`), or reversed when `flipped`.
    func packWinograd(flipped: Bool, _ window: (_ co: Int, _ ci: Int) -> UnsafePointer<Float>) -> [Float] {
        let lanes = conv3x3TileChannels
        let blockCount = blocks * inChannels * lanes
        var packed = [Float](repeating: 0, count: 16 * blockCount)
        packed.withUnsafeMutableBufferPointer { out in
            for co in 0..<outChannels {
                for ci in 0..<inChannels {
                    let w = window(co, ci)
                    @inline(__always) func g(_ a: Int, _ b: Int) -> Double {
                        Double(w[flipped ? 8 - (a * 3 + b) : a * 3 + b])
                    }
                    let slot = ((co / lanes) * inChannels + ci) * lanes + co % lanes
                    // U = t G^T for one row (t0, t1, t2) of t = G g.
                    @inline(__always) func emit(_ i: Int, _ t0: Double, _ t1: Double, _ t2: Double) {
                        out[(i * 4) * blockCount + slot] = Float(t0)
                        out[(i * 4 + 1) * blockCount + slot] = Float(0.5 * (t0 + t1 + t2))
                        out[(i * 4 + 2) * blockCount + slot] = Float(0.5 * (t0 - t1 + t2))
                        out[(i * 4 + 3) * blockCount + slot] = Float(t2)
                    }
                    // t = G g: rows g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2 of each column.
                    emit(0, g(0, 0), g(0, 1), g(0, 2))
                    emit(
                        1, 0.5 * (g(0, 0) + g(1, 0) + g(2, 0)), 0.5 * (g(0, 1) + g(1, 1) + g(2, 1)),
                        0.5 * (g(0, 2) + g(1, 2) + g(2, 2)))
                    emit(
                        2, 0.5 * (g(0, 0) - g(1, 0) + g(2, 0)), 0.5 * (g(0, 1) - g(1, 1) + g(2, 1)),
                        0.5 * (g(0, 2) - g(1, 2) + g(2, 2)))
                    emit(3, g(2, 0), g(2, 1), g(2, 2))
                }
            }
        }
        return packed
    }

    /// `packWinograd` of `W [Cout, Cin, 3, 3]` for the forward convolution.
    public func packWinogradForward(_ w: UnsafePointer<Float>) -> [Float] {
        packWinograd(flipped: false) { co, ci in w + (co * inChannels + ci) * 9 }
    }

    /// `packWinograd` for the input gradient of a layer with weights `W [outChannels', outChannels, 3, 3]`
    /// (this plan's channel roles swapped; window flipped), as `packInputGradient`.
    public func packWinogradInputGradient(_ w: UnsafePointer<Float>) -> [Float] {
        packWinograd(flipped: true) { co, ci in w + (ci * outChannels + co) * 9 }
    }

    /// The `[outChannels, height, width]` outputs (plus `bias`) of `images` images whose inputs
    /// `pad` wrote `paddedStride` floats apart, into `output + b * outputStride`; `scratch` holds
    /// `winogradScratchCount` floats.
    public func runWinograd(
        _ padded: UnsafePointer<Float>, paddedStride: Int, images: Int,
        weights: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>,
        _ output: UnsafeMutablePointer<Float>, outputStride: Int, bias: UnsafePointer<Float>?
    ) {
        let grid = winogradGrid!
        let tiles = grid.tiles
        let rows = blocks * conv3x3TileChannels
        let lanes = conv3x3TileChannels
        withUnsafeTemporaryAllocation(of: Int.self, capacity: inChannels) { offsets in
            for first in Swift.stride(from: 0, to: images, by: winogradGroup) {
                let count = min(winogradGroup, images - first)
                let positions = count * tiles
                let vXi = inChannels * positions + Self.xiSkew
                let mXi = rows * positions + Self.xiSkew
                let v = scratch
                let m = scratch + 16 * vXi
                for b in 0..<count {
                    winogradInput(
                        padded + (first + b) * paddedStride, channels: inChannels, planeStride: planeStride,
                        rowStride: rowStride, grid: grid, v + b * tiles, stride: positions, xiStride: vXi)
                }
                for ci in 0..<inChannels { offsets[ci] = ci * positions }
                for xi in 0..<16 {
                    indexedTiles(
                        input: v + xi * vXi, offsets: offsets.baseAddress!, steps: inChannels,
                        weights: weights + xi * blocks * inChannels * lanes, blocks: blocks,
                        output: m + xi * mXi, outputStride: positions, positions: positions,
                        lastBlockRows: outChannels - (blocks - 1) * lanes)
                }
                for b in 0..<count {
                    winogradOutput(
                        m + b * tiles, channels: outChannels, stride: positions, xiStride: mXi,
                        grid: grid, bias: bias, output + (first + b) * outputStride)
                }
            }
        }
    }
}

/// The weight gradient by Winograd F(3x3, 2x2), the dual of the forward's F(2x2, 3x3): per tile,
/// the input patch's transform `B^T d B` (the forward's own `winogradInput`) times dy's 2x2 block
/// transformed by the forward's `A`, summed over every tile of every image in the transformed
/// domain (16 GEMMs of [Cout x tiles] by [tiles x Cin]: long sums over small matrices, which
/// OpenBLAS's small-matrix kernel ran faster than a register-blocked loop of rrmd's own), and
/// only then mapped back to 3x3 by the forward's `G^T (.) G`. 16 multiplications per tile and
/// channel pair instead of 36.
extension DirectConv3x3 {
    /// Images transformed together for the weight gradient: enough tiles (256) for long GEMMs.
    public var winogradGradientGroup: Int { max(1, 256 / winogradTiles) }

    /// Floats of transform scratch `accumulateWinogradWeightGradient` needs.
    public var winogradGradientScratchCount: Int {
        16 * ((inChannels + outChannels) * winogradGradientGroup * winogradTiles + 2 * Self.xiSkew)
    }

    /// Floats of the transformed-domain sums `[xi][outChannels][inChannels]`.
    public var winogradGradientSumCount: Int { 16 * outChannels * inChannels }

    /// Adds the transformed-domain weight gradient of `images` images to `sums`
    /// (`winogradGradientSumCount` floats; `finishWinogradWeightGradient` maps them to dW).
    /// `paddedInputs` and `paddedGradients` are laid out as for `accumulateWeightGradient`.
    public func accumulateWinogradWeightGradient(
        paddedInputs: UnsafePointer<Float>, inputStride: Int,
        paddedGradients: UnsafePointer<Float>, gradientStride: Int, images: Int,
        scratch: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>
    ) {
        let grid = winogradGrid!
        let tiles = grid.tiles
        for first in Swift.stride(from: 0, to: images, by: winogradGradientGroup) {
            let count = min(winogradGradientGroup, images - first)
            let positions = count * tiles
            let vXi = inChannels * positions + Self.xiSkew
            let uXi = outChannels * positions + Self.xiSkew
            let v = scratch
            let u = scratch + 16 * vXi
            for b in 0..<count {
                winogradInput(
                    paddedInputs + (first + b) * inputStride, channels: inChannels, planeStride: planeStride,
                    rowStride: rowStride, grid: grid, v + b * tiles, stride: positions, xiStride: vXi)
                winogradGradient(
                    paddedGradients + (first + b) * gradientStride, channels: outChannels, planeStride: planeStride,
                    rowStride: rowStride, grid: grid, u + b * tiles, stride: positions, xiStride: uXi)
            }
            for xi in 0..<16 {
                gemm(
                    transA: false, transB: true, m: outChannels, n: inChannels, k: positions,
                    alpha: 1, a: u + xi * uXi, lda: positions, b: v + xi * vXi, ldb: positions,
                    beta: 1, c: sums + xi * outChannels * inChannels, ldc: inChannels)
            }
        }
    }

    /// Adds `G^T M G` of each channel pair's transformed sums `M` (from
    /// `accumulateWinogradWeightGradient`) to `dW [outChannels][inChannels][3][3]`, with
    /// `G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]` written out.
    public func finishWinogradWeightGradient(_ sums: UnsafePointer<Float>, into dW: UnsafeMutablePointer<Float>) {
        let pairs = outChannels * inChannels
        for pair in 0..<pairs {
            @inline(__always) func m(_ k: Int, _ l: Int) -> Float { sums[(k * 4 + l) * pairs + pair] }
            // t = M G (4 x 3), one row of M at a time.
            var t = (
                Float(0), Float(0), Float(0), Float(0), Float(0), Float(0),
                Float(0), Float(0), Float(0), Float(0), Float(0), Float(0)
            )
            withUnsafeMutableBytes(of: &t) { raw in
                let row = raw.bindMemory(to: Float.self)
                for k in 0..<4 {
                    let half = 0.5 * (m(k, 1) + m(k, 2))
                    row[3 * k] = m(k, 0) + half
                    row[3 * k + 1] = 0.5 * (m(k, 1) - m(k, 2))
                    row[3 * k + 2] = half + m(k, 3)
                }
                // G^T t (3 x 3).
                let out = dW + pair * 9
                for b in 0..<3 {
                    let half = 0.5 * (row[3 + b] + row[6 + b])
                    out[b] += row[b] + half
                    out[3 + b] += 0.5 * (row[3 + b] - row[6 + b])
                    out[6 + b] += half + row[9 + b]
                }
            }
        }
    }
}
