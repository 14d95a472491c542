// Compiled for AVX-512 like the rest of this target.

/// The consecutive output positions one tile row covers, as whole 16-lane registers: full tiles
/// use 48 (`Lanes48`); the last tile of a channel uses the narrowest width that covers what is
/// left, so a 16x16 image (272 padded positions) computes 272, not 288, and an 8x8 one 80, not 96.
protocol TileLanes {
    /// The input floats of one tap, loaded once and shared by the eight rows.
    associatedtype Inputs
    /// Zero accumulators.
    init()
    /// The floats at `p`, as many as this type covers (16, 32 or 48).
    static func load(_ p: UnsafePointer<Float>) -> Inputs
    /// Adds `x * w` lane by lane.
    mutating func add(_ x: Inputs, _ w: Float)
    /// Writes the sums to `p`.
    func store(_ p: UnsafeMutablePointer<Float>)
}

/// One register of sums.
struct Lanes16: TileLanes {
    var a: SIMD16<Float>
    @inline(__always) init() { a = .zero }
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> { load16(p) }
    @inline(__always) mutating func add(_ x: SIMD16<Float>, _ w: Float) { a.addProduct(x, SIMD16(repeating: w)) }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>) { store16(a, p) }
}

/// Two registers of sums.
struct Lanes32: TileLanes {
    var a, b: SIMD16<Float>
    @inline(__always) init() {
        a = .zero
        b = .zero
    }
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> (SIMD16<Float>, SIMD16<Float>) {
        (load16(p), load16(p + 16))
    }
    @inline(__always) mutating func add(_ x: (SIMD16<Float>, SIMD16<Float>), _ w: Float) {
        let s = SIMD16<Float>(repeating: w)
        a.addProduct(x.0, s)
        b.addProduct(x.1, s)
    }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>) {
        store16(a, p)
        store16(b, p + 16)
    }
}

/// Three registers of sums: a full tile.
struct Lanes48: TileLanes {
    var a, b, c: SIMD16<Float>
    @inline(__always) init() {
        a = .zero
        b = .zero
        c = .zero
    }
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
        (load16(p), load16(p + 16), load16(p + 32))
    }
    @inline(__always) mutating func add(_ x: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>), _ w: Float) {
        let s = SIMD16<Float>(repeating: w)
        a.addProduct(x.0, s)
        b.addProduct(x.1, s)
        c.addProduct(x.2, s)
    }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>) {
        store16(a, p)
        store16(b, p + 16)
        store16(c, p + 32)
    }
}

/// Adds one reduction step of a tile, the input floats at `p` times the eight channels'
/// weights `w[0..<8]`, to its eight rows of sums (kept as separate locals by the callers: held
/// in one struct, LLVM left them on the stack).
@inline(__always)
func addStep<L: TileLanes>(
    _ p: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
    _ r0: inout L, _ r1: inout L, _ r2: inout L, _ r3: inout L,
    _ r4: inout L, _ r5: inout L, _ r6: inout L, _ r7: inout L
) {
    let x = L.load(p)
    r0.add(x, w[0])
    r1.add(x, w[1])
    r2.add(x, w[2])
    r3.add(x, w[3])
    r4.add(x, w[4])
    r5.add(x, w[5])
    r6.add(x, w[6])
    r7.add(x, w[7])
}

/// Writes a tile's eight rows of sums, row `k` to `output + k * stride`.
@inline(__always)
func storeRows<L: TileLanes>(
    _ output: UnsafeMutablePointer<Float>, _ stride: Int,
    _ r0: L, _ r1: L, _ r2: L, _ r3: L, _ r4: L, _ r5: L, _ r6: L, _ r7: L
) {
    r0.store(output)
    r1.store(output + stride)
    r2.store(output + 2 * stride)
    r3.store(output + 3 * stride)
    r4.store(output + 4 * stride)
    r5.store(output + 5 * stride)
    r6.store(output + 6 * stride)
    r7.store(output + 7 * stride)
}

/// How `positions` consecutive positions split into tiles: `full` 48-wide tiles, then a last
/// one `tail` wide (0, 16, 32 or 48: the rest rounded up to whole registers).
@inline(__always)
func tileSplit(_ positions: Int) -> (full: Int, tail: Int) {
    let full = positions / 48
    let rest = positions - full * 48
    return (full, (rest + 15) / 16 * 16)
}
