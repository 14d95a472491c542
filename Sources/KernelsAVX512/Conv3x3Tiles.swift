// This module is compiled for AVX-512 (skylake-avx512: F, CD, BW, DQ, VL), so SIMD16<Float>
// becomes one zmm register. Nothing here may run unless the CPU has those extensions; the
// `Kernels` target checks before calling in.

/// Positions one tile covers along the padded, flattened output (three 16-lane registers).
public let conv3x3TileWidth = 48
/// Output channels one tile covers (eight rows of accumulators: 24 of the 32 zmm registers).
public let conv3x3TileChannels = 8

/// A 3x3, stride-1 convolution over images laid out "padded-flat": each channel is a plane of
/// `(H + 2) x rowStride` floats with the image inside a zero border, and output position
/// `j = y * rowStride + x` reads input positions `j + ky * rowStride + kx`. That turns the 2-D
/// window into nine shifted 1-D streams, so a tile is 8 output channels x 48 consecutive
/// positions (the last of a channel narrower, `TileLanes`) held in registers for the whole
/// reduction over channels and taps, and nothing is unfolded (no im2col) or packed. Positions
/// with `x >= W` are computed and discarded by the caller.
///
/// - `input`: `channels` planes, `planeStride` floats apart, readable up to
///   `(channels - 1) * planeStride + positions + 15 + 2 * rowStride + 2`.
/// - `weights`: `blocks` blocks of `[channels][9][8]` (tap-major inside a channel, the eight
///   output channels of the block innermost).
/// - `output`: `blocks * 8` rows of `outputStride` floats, of which the first `positions`
///   (rounded up to 16) are written.
public func conv3x3Tiles(
    input: UnsafePointer<Float>, channels: Int, planeStride: Int, rowStride: Int,
    weights: UnsafePointer<Float>, blocks: Int,
    output: UnsafeMutablePointer<Float>, outputStride: Int, positions: Int
) {
    // The reduction's streams in weight order (channel, then tap), so one tile kernel serves this
    // layout and the stride-2 phases (`indexedTiles`).
    withUnsafeTemporaryAllocation(of: Int.self, capacity: channels * 9) { offsets in
        var r = 0
        for c in 0..<channels {
            for ky in 0..<3 {
                for kx in 0..<3 {
                    offsets[r] = c * planeStride + ky * rowStride + kx
                    r += 1
                }
            }
        }
        indexedTiles(
            input: input, offsets: offsets.baseAddress!, steps: channels * 9, weights: weights, blocks: blocks,
            output: output, outputStride: outputStride, positions: positions)
    }
}
