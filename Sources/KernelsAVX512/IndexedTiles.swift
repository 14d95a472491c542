// Compiled for AVX-512 like the rest of this target; called only after `Kernels` has checked
// the CPU.

/// `conv3x3Tiles` with the reduction's input streams listed instead of implied: step `r` of the
/// reduction reads the 48 floats at `input + tile start + offsets[r]` and multiplies them by the
/// eight weights `weights[block][r][0..<8]`. Any window, stride or layout whose output positions
/// are consecutive in each stream fits; rrmd uses it for stride-2 windows over the four
/// even/odd row and column phases of the input, where each of the nine taps reads one phase.
///
/// - `input`: readable at `offsets[r] + positions + 15` for every `r`.
/// - `weights`: `blocks` blocks of `[steps][8]`.
/// - `output`: `blocks * 8` rows of `outputStride` floats, of which the first `positions`
///   (rounded up to 16) are written.
public func indexedTiles(
    input: UnsafePointer<Float>, offsets: UnsafePointer<Int>, steps: Int,
    weights: UnsafePointer<Float>, blocks: Int,
    output: UnsafeMutablePointer<Float>, outputStride: Int, positions: Int
) {
    let (full, tail) = tileSplit(positions)
    for block in 0..<blocks {
        let w = weights + block * steps * conv3x3TileChannels
        let out = output + block * conv3x3TileChannels * outputStride
        for t in 0..<full {
            indexedTile(
                Lanes48.self, input + t * conv3x3TileWidth, offsets, steps, w, out + t * conv3x3TileWidth, outputStride)
        }
        let last = full * conv3x3TileWidth
        switch tail {
        case 48: indexedTile(Lanes48.self, input + last, offsets, steps, w, out + last, outputStride)
        case 32: indexedTile(Lanes32.self, input + last, offsets, steps, w, out + last, outputStride)
        case 16: indexedTile(Lanes16.self, input + last, offsets, steps, w, out + last, outputStride)
        default: break
        }
    }
}

/// One tile of 8 channels x `L`'s positions (16, 32 or 48) over the listed streams, its sums in registers
/// throughout.
@inline(never)
private func indexedTile<L: TileLanes>(
    _: L.Type, _ input: UnsafePointer<Float>, _ offsets: UnsafePointer<Int>, _ steps: Int,
    _ weights: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ outputStride: Int
) {
    var r0 = L()
    var r1 = L()
    var r2 = L()
    var r3 = L()
    var r4 = L()
    var r5 = L()
    var r6 = L()
    var r7 = L()
    var w = weights
    for r in 0..<steps {
        addStep(input + offsets[r], w, &r0, &r1, &r2, &r3, &r4, &r5, &r6, &r7)
        w += conv3x3TileChannels
    }
    storeRows(output, outputStride, r0, r1, r2, r3, r4, r5, r6, r7)
}
