// Compiled for AVX-512 like the rest of this target; called only after `Kernels` has checked
// the CPU.
//
// Winograd F(2x2, 3x3) (Lavin & Gray 2016): each 2x2 block of outputs ("tile") is computed from
// the 4x4 input patch around it as Y = A^T [(G g G^T) . (B^T d B)] A, 16 products per tile and
// channel pair instead of the direct window's 36. The transforms here work on 16 tiles at a
// time, one per lane; the products are `indexedTiles` runs, one per transform position.

/// The 32 floats of one padded row pair per lane group: for 16 tiles laid out `tilesPerRow` to
/// a tile row, the 2 * tilesPerRow floats at `p` of each of the 16 / tilesPerRow tile rows
/// (`tileRowStride` floats apart) back to back. Even lanes of the result are then the tiles'
/// even columns and odd lanes their odd columns.
@inline(__always)
private func tileRowFloats(_ p: UnsafePointer<Float>, _ tileRowStride: Int, _ tilesPerRow: Int) -> SIMD32<Float> {
    switch tilesPerRow {
    case 16:
        return UnsafeRawPointer(p).loadUnaligned(as: SIMD32<Float>.self)
    case 8:
        return SIMD32(lowHalf: load16(p), highHalf: load16(p + tileRowStride))
    default:
        return SIMD32(
            lowHalf: SIMD16(lowHalf: load8(p), highHalf: load8(p + tileRowStride)),
            highHalf: SIMD16(lowHalf: load8(p + 2 * tileRowStride), highHalf: load8(p + 3 * tileRowStride)))
    }
}

/// One row of 16 patches: columns 0 to 3 of each lane's patch row, the 4 floats at `p` onward
/// of its tile (see `tileRowFloats`).
@inline(__always)
private func patchRow(
    _ p: UnsafePointer<Float>, _ tileRowStride: Int, _ tilesPerRow: Int
)
    -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)
{
    let a = tileRowFloats(p, tileRowStride, tilesPerRow)
    let b = tileRowFloats(p + 2, tileRowStride, tilesPerRow)
    return (a.evenHalf, a.oddHalf, b.evenHalf, b.oddHalf)
}

/// The column half of the input transform for one row of 16 patches (its columns `k0`-`k3`):
/// its four results, `xiStride` floats apart.
@inline(__always)
private func columnTransform(
    _ k0: SIMD16<Float>, _ k1: SIMD16<Float>, _ k2: SIMD16<Float>, _ k3: SIMD16<Float>,
    _ out: UnsafeMutablePointer<Float>, _ xiStride: Int
) {
    store16(k0 - k2, out)
    store16(k1 + k2, out + xiStride)
    store16(k2 - k1, out + 2 * xiStride)
    store16(k1 - k3, out + 3 * xiStride)
}

/// The 2x2 tiles the transforms lay over a `height x width` image: `tilesPerRow` (4, 8 or 16) to
/// a tile row, one lane each, and `tileRows` rows, in whole groups of 16 lanes. Where the image
/// is not a whole number of such rows, the grid runs past its right and bottom edges: the
/// "ghost" outputs there are computed from whatever the padded layout holds beyond the image and
/// never written (their inputs reach only the ghost outputs: see `winogradInput`), and their dy
/// is zeroed for the weight gradient. A grid is offered only when it has at most a third more
/// outputs than the image, so 28-, 14- and 7-wide images (MNIST's) run on it and a 2x8 does not.
public struct WinogradGrid: Equatable, Sendable {
    /// The image's size.
    public let height, width: Int
    /// Tiles to a grid row (lanes), and grid rows.
    public let tilesPerRow, tileRows: Int

    /// The grid for a `height x width` image, or nil when none fits well (see the type).
    public init?(height: Int, width: Int) {
        // The fewest of 4, 8 or 16 tiles that cover a row (no array: planning runs per image row).
        guard height > 0, width > 0, width <= 32 else { return nil }
        let perRow = width <= 8 ? 4 : width <= 16 ? 8 : 16
        let rowsPerGroup = 16 / perRow
        let rows = ((height + 1) / 2 + rowsPerGroup - 1) / rowsPerGroup * rowsPerGroup
        guard 3 * (4 * rows * perRow) <= 4 * (height * width) else { return nil }
        self.height = height
        self.width = width
        tilesPerRow = perRow
        tileRows = rows
    }

    /// Lanes (tiles) per image, ghosts included.
    public var tiles: Int { tileRows * tilesPerRow }
    /// True when no tile lies past the image.
    public var isExact: Bool { 2 * tilesPerRow == width && 2 * tileRows == height }
    /// Padded rows per group of 16 lanes.
    var rowsPerGroup: Int { 16 / tilesPerRow }

    /// One past the last float `winogradInput` reads of a plane whose rows are `rowStride` apart:
    /// the last group's bottom patch row, and the 2 * `tilesPerRow` + 2 floats from its start.
    public func readExtent(rowStride: Int) -> Int { (2 * tileRows + 1) * rowStride + 2 * tilesPerRow + 2 }

    /// Lanes of group `group` whose tile holds at least one output of the image.
    func realLanes(group: Int) -> SIMDMask<SIMD16<Int32>> {
        let lane = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        let column = lane % Int32(tilesPerRow)
        let row = lane / Int32(tilesPerRow) &+ Int32(group * rowsPerGroup)
        return (column .< Int32((width + 1) / 2)) .& (row .< Int32((height + 1) / 2))
    }
}

/// The F(2x2, 3x3) input transform of one image in the padded-flat layout of `conv3x3Tiles`
/// (planes `planeStride` apart, rows `rowStride >= width + 1` apart, the image at row 1, column
/// 1, zeros around it): `v[xi * xiStride + c * stride + t] = (B^T d B)[xi]` for each channel
/// `c`, grid tile `t = ty * grid.tilesPerRow + tx` with input patch `d` = padded rows
/// `2ty..2ty+3`, columns `2tx..2tx+3`, and transform position `xi` in `0..<16`.
///
/// A patch's last row and column enter only the transform positions that reach its tile's
/// second output row and column (`d1 - d3`, `k1 - k3`), so where those outputs are ghosts (an
/// odd-sized image) whatever lies there reaches no real output. Reads end before
/// `grid.readExtent(rowStride:)` floats into the last plane.
public func winogradInput(
    _ padded: UnsafePointer<Float>, channels: Int, planeStride: Int, rowStride: Int,
    grid: WinogradGrid, _ v: UnsafeMutablePointer<Float>, stride: Int, xiStride: Int
) {
    let tilesPerRow = grid.tilesPerRow
    let tiles = grid.tiles
    let tileRowStride = 2 * rowStride
    let tileRowsPerGroup = grid.rowsPerGroup
    for c in 0..<channels {
        let plane = padded + c * planeStride
        var out = v + c * stride
        for group in 0..<(tiles / 16) {
            let top = plane + group * tileRowsPerGroup * tileRowStride
            // Row r of each lane's patch, its four columns as 16-lane vectors (arithmetic on
            // SIMD32 itself is not vectorised, so only the loads and splits use it).
            let r0 = patchRow(top, tileRowStride, tilesPerRow)
            let r1 = patchRow(top + rowStride, tileRowStride, tilesPerRow)
            let r2 = patchRow(top + 2 * rowStride, tileRowStride, tilesPerRow)
            let r3 = patchRow(top + 3 * rowStride, tileRowStride, tilesPerRow)
            // B^T d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3; then (B^T d) B on each row's
            // columns k0 - k2, k1 + k2, k2 - k1, k1 - k3.
            columnTransform(r0.0 - r2.0, r0.1 - r2.1, r0.2 - r2.2, r0.3 - r2.3, out, xiStride)
            columnTransform(r1.0 + r2.0, r1.1 + r2.1, r1.2 + r2.2, r1.3 + r2.3, out + 4 * xiStride, xiStride)
            columnTransform(r2.0 - r1.0, r2.1 - r1.1, r2.2 - r1.2, r2.3 - r1.3, out + 8 * xiStride, xiStride)
            columnTransform(r1.0 - r3.0, r1.1 - r3.1, r1.2 - r3.2, r1.3 - r3.3, out + 12 * xiStride, xiStride)
            out += 16
        }
    }
}

/// The F(2x2, 3x3) output transform: from `m[xi * xiStride + c * stride + t]` (the products for
/// output channel `c`, grid tile `t`, transform position `xi`) writes each channel's
/// `grid.height x grid.width` plane `A^T m A` (plus `bias[c]` when given) to
/// `out + c * height * width`. Ghost outputs are written only where real outputs written later
/// cover them again, and never past the last channel's plane.
public func winogradOutput(
    _ m: UnsafePointer<Float>, channels: Int, stride: Int, xiStride: Int,
    grid: WinogradGrid, bias: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>
) {
    let tilesPerRow = grid.tilesPerRow
    let tiles = grid.tiles
    let tileRowsPerGroup = grid.rowsPerGroup
    let (height, width) = (grid.height, grid.width)
    let outRowStride = 2 * width
    let end = channels * height * width
    for c in 0..<channels {
        let b = SIMD16<Float>(repeating: bias?[c] ?? 0)
        var src = m + c * stride
        let plane = out + c * height * width
        for group in 0..<(tiles / 16) {
            let m0 = load16(src)
            let m1 = load16(src + xiStride)
            let m2 = load16(src + 2 * xiStride)
            let m3 = load16(src + 3 * xiStride)
            let m4 = load16(src + 4 * xiStride)
            let m5 = load16(src + 5 * xiStride)
            let m6 = load16(src + 6 * xiStride)
            let m7 = load16(src + 7 * xiStride)
            let m8 = load16(src + 8 * xiStride)
            let m9 = load16(src + 9 * xiStride)
            let m10 = load16(src + 10 * xiStride)
            let m11 = load16(src + 11 * xiStride)
            let m12 = load16(src + 12 * xiStride)
            let m13 = load16(src + 13 * xiStride)
            let m14 = load16(src + 14 * xiStride)
            let m15 = load16(src + 15 * xiStride)
            // A^T m: rows m0 + m1 + m2 and m1 - m2 - m3 (in transform rows) for each column.
            let s00 = m0 + m4 + m8
            let s10 = m4 - m8 - m12
            let s01 = m1 + m5 + m9
            let s11 = m5 - m9 - m13
            let s02 = m2 + m6 + m10
            let s12 = m6 - m10 - m14
            let s03 = m3 + m7 + m11
            let s13 = m7 - m11 - m15
            // (A^T m) A: the same on the columns, then the bias.
            var row0 = SIMD32<Float>()
            var row1 = SIMD32<Float>()
            row0.evenHalf = s00 + s01 + s02 + b
            row0.oddHalf = s01 - s02 - s03 + b
            row1.evenHalf = s10 + s11 + s12 + b
            row1.oddHalf = s11 - s12 - s13 + b
            let top = plane + group * tileRowsPerGroup * outRowStride
            // Whole tile rows, even where the grid runs past the image: each row's excess lands on
            // the rows after it (and a channel's ghost rows on the next channel's first rows), all
            // written afterwards, as long as it stays inside this image's output (`end`; always
            // on an exact grid, which has no excess).
            let lastEnd = (top - out) + (2 * tileRowsPerGroup - 1) * width + 2 * tilesPerRow
            if lastEnd <= end {
                storeRowsInOrder(row0, row1, top, width, tilesPerRow)
            } else {
                storeImageRows(row0, row1, top, firstRow: 2 * group * tileRowsPerGroup, grid)
            }
            src += 16
        }
    }
}

/// The output rows of one group of 16 tiles (`tileRowFloats`'s inverse, two output rows per
/// tile row): chunk `k` of `row0` (`2 * tilesPerRow` floats) to image row `2k`, then chunk `k`
/// of `row1` to row `2k + 1`, rows `width` floats apart from `top`. In ascending rows, so that
/// where the grid is wider than the image each chunk's excess is covered by the next row's store.
@inline(__always)
private func storeRowsInOrder(
    _ row0: SIMD32<Float>, _ row1: SIMD32<Float>, _ top: UnsafeMutablePointer<Float>, _ width: Int,
    _ tilesPerRow: Int
) {
    switch tilesPerRow {
    case 16:
        UnsafeMutableRawPointer(top).storeBytes(of: row0, as: SIMD32<Float>.self)
        UnsafeMutableRawPointer(top + width).storeBytes(of: row1, as: SIMD32<Float>.self)
    case 8:
        store16(row0.lowHalf, top)
        store16(row1.lowHalf, top + width)
        store16(row0.highHalf, top + 2 * width)
        store16(row1.highHalf, top + 3 * width)
    default:
        store8(row0.lowHalf.lowHalf, top)
        store8(row1.lowHalf.lowHalf, top + width)
        store8(row0.lowHalf.highHalf, top + 2 * width)
        store8(row1.lowHalf.highHalf, top + 3 * width)
        store8(row0.highHalf.lowHalf, top + 4 * width)
        store8(row1.highHalf.lowHalf, top + 5 * width)
        store8(row0.highHalf.highHalf, top + 6 * width)
        store8(row1.highHalf.highHalf, top + 7 * width)
    }
}

/// `storeRowsInOrder` without any excess, for an image's last rows: of each tile row's two
/// output rows (`row0`, `row1`, each `2 * tilesPerRow` floats per tile row, back to back), the
/// first `width` floats of those inside the image, to `top + r * width` for image row
/// `firstRow + r`.
@inline(never)
private func storeImageRows(
    _ row0: SIMD32<Float>, _ row1: SIMD32<Float>, _ top: UnsafeMutablePointer<Float>, firstRow: Int,
    _ grid: WinogradGrid
) {
    withUnsafeTemporaryAllocation(of: SIMD32<Float>.self, capacity: 2) { rows in
        rows[0] = row0
        rows[1] = row1
        let floats = UnsafeRawPointer(rows.baseAddress!).assumingMemoryBound(to: Float.self)
        let chunk = 2 * grid.tilesPerRow
        for k in 0..<grid.rowsPerGroup {
            for half in 0..<2 {
                let r = 2 * k + half
                guard firstRow + r < grid.height else { return }
                (top + r * grid.width).update(from: floats + half * 32 + k * chunk, count: grid.width)
            }
        }
    }
}

/// The dy half of the F(3x3, 2x2) weight gradient (the dual of F(2x2, 3x3): the same input
/// transform, `A` of the forward as the "filter" transform and its `G` as the output transform):
/// from dy in the padded layout of `DirectConv3x3.pad` (each channel's image at row 1, column 1 of
/// a plane), `u[xi * xiStride + c * stride + t] = (A dy_t A^T)[xi]` for the 2x2 block `dy_t` of
/// tile `t` and `A = [[1, 0], [1, 1], [1, -1], [0, -1]]`.
///
/// Tiles wholly past the image get zeros, so they add nothing to the sums; a tile that is half
/// ghost (odd sizes) reads its ghost half from the zero border, which cancels exactly the part of
/// its input patch that lies beyond the image.
public func winogradGradient(
    _ padded: UnsafePointer<Float>, channels: Int, planeStride: Int, rowStride: Int,
    grid: WinogradGrid, _ u: UnsafeMutablePointer<Float>, stride: Int, xiStride: Int
) {
    let tilesPerRow = grid.tilesPerRow
    let tiles = grid.tiles
    let tileRowStride = 2 * rowStride
    let tileRowsPerGroup = grid.rowsPerGroup
    let exact = grid.isExact
    let groups = tiles / 16
    // Each group's ghost lanes, once per call rather than once per channel: the mask's lane
    // arithmetic and comparisons compile to scalar loops (4 % of a resnet's training step when
    // they ran per channel).
    withUnsafeTemporaryAllocation(of: SIMDMask<SIMD16<Int32>>.self, capacity: exact ? 1 : groups) { ghosts in
        if !exact {
            for group in 0..<groups { ghosts[group] = .!grid.realLanes(group: group) }
        }
        for c in 0..<channels {
            let plane = padded + c * planeStride + rowStride + 1
            var out = u + c * stride
            for group in 0..<groups {
                let top = plane + group * tileRowsPerGroup * tileRowStride
                let a = tileRowFloats(top, tileRowStride, tilesPerRow)
                let b = tileRowFloats(top + rowStride, tileRowStride, tilesPerRow)
                var d00 = a.evenHalf
                var d01 = a.oddHalf
                var d10 = b.evenHalf
                var d11 = b.oddHalf
                if !exact {
                    let ghost = ghosts[group]
                    d00.replace(with: 0, where: ghost)
                    d01.replace(with: 0, where: ghost)
                    d10.replace(with: 0, where: ghost)
                    d11.replace(with: 0, where: ghost)
                }
                // A dy: rows d0, d0 + d1, d0 - d1, -d1; then (A dy) A^T on each row's two columns.
                gradientColumns(d00, d01, out, xiStride)
                gradientColumns(d00 + d10, d01 + d11, out + 4 * xiStride, xiStride)
                gradientColumns(d00 - d10, d01 - d11, out + 8 * xiStride, xiStride)
                gradientColumns(-d10, -d11, out + 12 * xiStride, xiStride)
                out += 16
            }
        }
    }
}

/// The column half of `winogradGradient` for one row (columns `e0`, `e1`): `e0, e0 + e1,
/// e0 - e1, -e1`, `xiStride` floats apart.
@inline(__always)
private func gradientColumns(
    _ e0: SIMD16<Float>, _ e1: SIMD16<Float>, _ out: UnsafeMutablePointer<Float>, _ xiStride: Int
) {
    store16(e0, out)
    store16(e0 + e1, out + xiStride)
    store16(e0 - e1, out + 2 * xiStride)
    store16(-e1, out + 3 * xiStride)
}
