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
///   (rounded up to 16) are written; of the last block only the first `lastBlockRows` rows are
///   when that is 4 or fewer (its other rows' weights are the packing's zeros, and a caller that
///   passes it reads only its real channels).
public func indexedTiles(
    input: UnsafePointer<Float>, offsets: UnsafePointer<Int>, steps: Int,
    weights: UnsafePointer<Float>, blocks: Int,
    output: UnsafeMutablePointer<Float>, outputStride: Int, positions: Int,
    lastBlockRows: Int = conv3x3TileChannels
) {
    let (full, tail) = tileSplit(positions)
    for block in 0..<blocks {
        let w = weights + block * steps * conv3x3TileChannels
        let out = output + block * conv3x3TileChannels * outputStride
        // A 20-channel layer (resnet20 x1.25's first stage) would otherwise spend a sixth of its
        // products on four rows of zero weights.
        let half = block == blocks - 1 && lastBlockRows <= 4
        for t in 0..<full {
            let at = t * conv3x3TileWidth
            tile(Lanes48.self, half: half, input + at, offsets, steps, w, out + at, outputStride)
        }
        let last = full * conv3x3TileWidth
        switch tail {
        case 48: tile(Lanes48.self, half: half, input + last, offsets, steps, w, out + last, outputStride)
        case 32: tile(Lanes32.self, half: half, input + last, offsets, steps, w, out + last, outputStride)
        case 16: tile(Lanes16.self, half: half, input + last, offsets, steps, w, out + last, outputStride)
        default: break
        }
    }
}

/// One tile of a block: all eight rows (`indexedTile`) or only the first four (`halfTile`).
@inline(__always)
private func tile<L: TileLanes>(
    _: L.Type, half: Bool, _ input: UnsafePointer<Float>, _ offsets: UnsafePointer<Int>, _ steps: Int,
    _ weights: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ outputStride: Int
) {
    if half {
        halfTile(L.self, input, offsets, steps, weights, output, outputStride)
    } else {
        indexedTile(L.self, input, offsets, steps, weights, output, outputStride)
    }
}

/// `indexedTile` for the first 4 of a block's 8 channels: the weights keep their stride of 8.
@inline(never)
private func halfTile<L: TileLanes>(
    _: L.Type, _ input: UnsafePointer<Float>, _ offsets: UnsafePointer<Int>, _ steps: Int,
    _ weights: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ outputStride: Int
) {
    var r0 = L()
    var r1 = L()
    var r2 = L()
    var r3 = L()
    var w = weights
    for r in 0..<steps {
        let x = L.load(input + offsets[r])
        r0.add(x, w[0])
        r1.add(x, w[1])
        r2.add(x, w[2])
        r3.add(x, w[3])
        w += conv3x3TileChannels
    }
    r0.store(output)
    r1.store(output + outputStride)
    r2.store(output + 2 * outputStride)
    r3.store(output + 3 * outputStride)
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
