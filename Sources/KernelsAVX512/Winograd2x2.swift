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

/// Writes `tileRowFloats`'s inverse: chunk `k` of `2 * tilesPerRow` floats of `v` to
/// `p + k * tileRowStride`.
@inline(__always)
private func storeTileRows(
    _ v: SIMD32<Float>, _ p: UnsafeMutablePointer<Float>, _ tileRowStride: Int, _ tilesPerRow: Int
) {
    switch tilesPerRow {
    case 16:
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD32<Float>.self)
    case 8:
        store16(v.lowHalf, p)
        store16(v.highHalf, p + tileRowStride)
    default:
        store8(v.lowHalf.lowHalf, p)
        store8(v.lowHalf.highHalf, p + tileRowStride)
        store8(v.highHalf.lowHalf, p + 2 * tileRowStride)
        store8(v.highHalf.highHalf, p + 3 * tileRowStride)
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

/// True when `winogradInput` and `winogradOutput` handle a `height x width` image: 2x2 tiles,
/// 4, 8 or 16 of them to a row, and whole groups of 16.
public func winogradFits(height: Int, width: Int) -> Bool {
    let tilesPerRow = width / 2
    return height % 2 == 0 && width % 2 == 0 && [4, 8, 16].contains(tilesPerRow)
        && (height / 2 * tilesPerRow) % 16 == 0
}

/// The F(2x2, 3x3) input transform of one image in the padded-flat layout of `conv3x3Tiles`
/// (planes `planeStride` apart, rows `rowStride >= width + 1` apart, the image at row 1, column
/// 1, zeros around it): `v[xi * xiStride + c * stride + t] = (B^T d B)[xi]` for each channel
/// `c`, tile `t = ty * (width / 2) + tx` with input patch `d` = padded rows `2ty..2ty+3`,
/// columns `2tx..2tx+3`, and transform position `xi` in `0..<16`.
public func winogradInput(
    _ padded: UnsafePointer<Float>, channels: Int, planeStride: Int, rowStride: Int,
    height: Int, width: Int, _ v: UnsafeMutablePointer<Float>, stride: Int, xiStride: Int
) {
    let tilesPerRow = width / 2
    let tiles = height / 2 * tilesPerRow
    let tileRowStride = 2 * rowStride
    let tileRowsPerGroup = 16 / tilesPerRow
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
/// output channel `c`, tile `t`, transform position `xi`) writes each channel's `height x width`
/// plane `A^T m A` (plus `bias[c]` when given) to `out + c * height * width`.
public func winogradOutput(
    _ m: UnsafePointer<Float>, channels: Int, stride: Int, xiStride: Int,
    height: Int, width: Int, bias: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>
) {
    let tilesPerRow = width / 2
    let tiles = height / 2 * tilesPerRow
    let tileRowsPerGroup = 16 / tilesPerRow
    let outRowStride = 2 * width
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
            storeTileRows(row0, top, outRowStride, tilesPerRow)
            storeTileRows(row1, top + width, outRowStride, tilesPerRow)
            src += 16
        }
    }
}

/// The dy half of the F(3x3, 2x2) weight gradient (the dual of F(2x2, 3x3): the same input
/// transform, `A` of the forward as the "filter" transform and its `G` as the output transform):
/// from dy in the padded layout of `DirectConv3x3.pad` (each channel's image at row 1, column 1 of
/// a plane), `u[xi * xiStride + c * stride + t] = (A dy_t A^T)[xi]` for the 2x2 block `dy_t` of
/// tile `t` and `A = [[1, 0], [1, 1], [1, -1], [0, -1]]`.
public func winogradGradient(
    _ padded: UnsafePointer<Float>, channels: Int, planeStride: Int, rowStride: Int,
    height: Int, width: Int, _ u: UnsafeMutablePointer<Float>, stride: Int, xiStride: Int
) {
    let tilesPerRow = width / 2
    let tiles = height / 2 * tilesPerRow
    let tileRowStride = 2 * rowStride
    let tileRowsPerGroup = 16 / tilesPerRow
    for c in 0..<channels {
        let plane = padded + c * planeStride + rowStride + 1
        var out = u + c * stride
        for group in 0..<(tiles / 16) {
            let top = plane + group * tileRowsPerGroup * tileRowStride
            let a = tileRowFloats(top, tileRowStride, tilesPerRow)
            let b = tileRowFloats(top + rowStride, tileRowStride, tilesPerRow)
            let d00 = a.evenHalf
            let d01 = a.oddHalf
            let d10 = b.evenHalf
            let d11 = b.oddHalf
            // A dy: rows d0, d0 + d1, d0 - d1, -d1; then (A dy) A^T on each row's two columns.
            gradientColumns(d00, d01, out, xiStride)
            gradientColumns(d00 + d10, d01 + d11, out + 4 * xiStride, xiStride)
            gradientColumns(d00 - d10, d01 - d11, out + 8 * xiStride, xiStride)
            gradientColumns(-d10, -d11, out + 12 * xiStride, xiStride)
            out += 16
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
