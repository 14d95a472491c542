/// SIMD elementwise operations and reductions on raw Float buffers.
///
/// Each function processes 16 lanes at a time and finishes with a scalar tail, so any length
/// works. Each has a plain-loop twin in the tests (`Tests/KernelsTests/VectorReference.swift`).
public enum Vector {
    public typealias V = SIMD16<Float>
    @usableFromInline static let width = 16

    @inline(__always) @usableFromInline
    static func load(_ p: UnsafePointer<Float>, _ i: Int) -> V {
        UnsafeRawPointer(p + i).loadUnaligned(as: V.self)
    }

    @inline(__always) @usableFromInline
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
        UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: V.self)
    }

    /// `dst[i] = src[i]` for short runs (an image row of a small feature map): 8 lanes at a time
    /// inline, where `memmove`'s call and size dispatch cost more than the copy itself.
    @inlinable
    public static func copy(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            UnsafeMutableRawPointer(dst + i).storeBytes(
                of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self),
                as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            dst[i] = src[i]
            i += 1
        }
    }

    /// `sumAndDot(d, x)` where `d[i] = y[i] > 0 ? dy[i] : 0` (a ReLU's backward, with output
    /// `y`, fused into the reduction), with the same arithmetic so the result is bit-identical.
    @inlinable
    public static func maskedSumAndDot(
        _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
        _ n: Int
    ) -> (sum: Float, dot: Float) {
        let zero = V(repeating: 0)
        var s = V()
        var d = V()
        var i = 0
        while i + width <= n {
            let va = zero.replacing(with: load(dy, i), where: load(y, i) .> zero)
            s += va
            d.addProduct(va, load(x, i))
            i += width
        }
        var ts = s.sum()
        var td = d.sum()
        while i < n {
            let a: Float = y[i] > 0 ? dy[i] : 0
            ts += a
            td += a * x[i]
            i += 1
        }
        return (ts, td)
    }

    /// `maskedSumAndDot` with the ReLU's mask taken from its input instead of its output: `d[i] =
    /// x[i] * a + b > 0 ? dy[i] : 0`, where `x * a + b` is computed as `affineRelu` computes it,
    /// so the mask is the same, bit for bit, without reading the ReLU's output.
    @inlinable
    public static func affineMaskedSumAndDot(
        _ x: UnsafePointer<Float>, _ a: Float, _ b: Float, _ dy: UnsafePointer<Float>,
        _ n: Int
    ) -> (sum: Float, dot: Float) {
        let zero = V(repeating: 0)
        let va = V(repeating: a)
        let vb = V(repeating: b)
        var s = V()
        var d = V()
        var i = 0
        while i + width <= n {
            let vx = load(x, i)
            let va2 = zero.replacing(with: load(dy, i), where: vx * va + vb .> zero)
            s += va2
            d.addProduct(va2, vx)
            i += width
        }
        var ts = s.sum()
        var td = d.sum()
        while i < n {
            let g: Float = x[i] * a + b > 0 ? dy[i] : 0
            ts += g
            td += g * x[i]
            i += 1
        }
        return (ts, td)
    }

    /// `maskedCombine` with the mask `x[i] * a + b > 0` (see `affineMaskedSumAndDot`):
    /// `out[i] = k1 * d[i] + k2 * x[i] + k3`.
    @inlinable
    public static func affineMaskedCombine(
        _ x: UnsafePointer<Float>, _ a: Float, _ b: Float, _ dy: UnsafePointer<Float>,
        _ k1: Float, _ k2: Float, _ k3: Float, _ out: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        let zero = V(repeating: 0)
        let va = V(repeating: a)
        let vb = V(repeating: b)
        let v1 = V(repeating: k1)
        let v2 = V(repeating: k2)
        let v3 = V(repeating: k3)
        var i = 0
        while i + width <= n {
            let vx = load(x, i)
            let d = zero.replacing(with: load(dy, i), where: vx * va + vb .> zero)
            store(d * v1 + vx * v2 + v3, out, i)
            i += width
        }
        while i < n {
            let d: Float = x[i] * a + b > 0 ? dy[i] : 0
            out[i] = k1 * d + k2 * x[i] + k3
            i += 1
        }
    }

    /// `combine(d, a, x, b, c)` where `d[i] = y[i] > 0 ? dy[i] : 0`, bit-identical to masking
    /// first.
    @inlinable
    public static func maskedCombine(
        _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ a: Float, _ x: UnsafePointer<Float>,
        _ b: Float, _ c: Float, _ out: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        let zero = V(repeating: 0)
        let va = V(repeating: a)
        let vb = V(repeating: b)
        let vc = V(repeating: c)
        var i = 0
        while i + width <= n {
            let d = zero.replacing(with: load(dy, i), where: load(y, i) .> zero)
            store(d * va + load(x, i) * vb + vc, out, i)
            i += width
        }
        while i < n {
            let d: Float = y[i] > 0 ? dy[i] : 0
            out[i] = a * d + b * x[i] + c
            i += 1
        }
    }

    /// `out[i] = a[i] + b[i]`; `out` may alias `a` or `b`.
    @inlinable
    public static func add(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        var i = 0
        while i + width <= n {
            store(load(a, i) + load(b, i), out, i)
            i += width
        }
        while i < n {
            out[i] = a[i] + b[i]
            i += 1
        }
    }

    /// `out[i] = max(a[i] + b[i], 0)`: a residual sum and its ReLU in one pass; `out` may alias
    /// `a` or `b`.
    @inlinable
    public static func addRelu(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        let zero = V(repeating: 0)
        var i = 0
        while i + width <= n {
            store(pointwiseMax(load(a, i) + load(b, i), zero), out, i)
            i += width
        }
        while i < n {
            out[i] = Swift.max(a[i] + b[i], 0)
            i += 1
        }
    }

    /// `out[i] = max((x[i] * a + b) + s[i], 0)` (or without the max when `relu` is false): an
    /// inference BatchNorm, a residual sum and its ReLU in one pass, with the same arithmetic
    /// as `affine` followed by `addRelu` (or `add`), so the result is bit-identical.
    @inlinable
    public static func affineAdd(
        _ x: UnsafePointer<Float>, _ a: Float, _ b: Float, _ s: UnsafePointer<Float>, relu: Bool,
        _ out: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        let va = V(repeating: a)
        let vb = V(repeating: b)
        let zero = V(repeating: 0)
        var i = 0
        if relu {
            while i + width <= n {
                store(pointwiseMax((load(x, i) * va + vb) + load(s, i), zero), out, i)
                i += width
            }
            while i < n {
                out[i] = Swift.max((x[i] * a + b) + s[i], 0)
                i += 1
            }
        } else {
            while i + width <= n {
                store((load(x, i) * va + vb) + load(s, i), out, i)
                i += width
            }
            while i < n {
                out[i] = (x[i] * a + b) + s[i]
                i += 1
            }
        }
    }

    /// `out[i] = max(a * x[i] + b, 0)`: an affine map (inference BatchNorm) and its ReLU in one pass.
    @inlinable
    public static func affineRelu(
        _ x: UnsafePointer<Float>, _ a: Float, _ b: Float, _ out: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        let va = V(repeating: a)
        let vb = V(repeating: b)
        let zero = V(repeating: 0)
        var i = 0
        // The same arithmetic as `affine` (multiply, then add), so fusing changes no bits.
        while i + width <= n {
            store(pointwiseMax(load(x, i) * va + vb, zero), out, i)
            i += width
        }
        while i < n {
            out[i] = Swift.max(x[i] * a + b, 0)
            i += 1
        }
    }

    /// `y[i] += alpha * x[i]`.
    @inlinable
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let va = V(repeating: alpha)
        var i = 0
        while i + width <= n {
            store(load(y, i) + va * load(x, i), y, i)
            i += width
        }
        while i < n {
            y[i] += alpha * x[i]
            i += 1
        }
    }

    /// `x[i] *= alpha`.
    @inlinable
    public static func scale(_ x: UnsafeMutablePointer<Float>, _ alpha: Float, _ n: Int) {
        let va = V(repeating: alpha)
        var i = 0
        while i + width <= n {
            store(load(x, i) * va, x, i)
            i += width
        }
        while i < n {
            x[i] *= alpha
            i += 1
        }
    }

    /// `acc[i] += y[i] > 0 ? dy[i] : 0`: a ReLU's backward (from its output `y`) added into a sum.
    @inlinable
    public static func maskedAdd(
        _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ acc: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        let zero = V(repeating: 0)
        var i = 0
        while i + width <= n {
            store(load(acc, i) + zero.replacing(with: load(dy, i), where: load(y, i) .> zero), acc, i)
            i += width
        }
        while i < n {
            acc[i] += y[i] > 0 ? dy[i] : 0
            i += 1
        }
    }

    /// `out[i] = alpha * x[i]`; `out` may alias `x`.
    @inlinable
    public static func scale(_ x: UnsafePointer<Float>, _ alpha: Float, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        let va = V(repeating: alpha)
        var i = 0
        while i + width <= n {
            store(load(x, i) * va, out, i)
            i += width
        }
        while i < n {
            out[i] = alpha * x[i]
            i += 1
        }
    }

    /// `out[i] = y[i] > 0 ? a * dy[i] : 0`: a ReLU's backward (from its output `y`) followed by
    /// a scale, in one pass.
    @inlinable
    public static func maskedScale(
        _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ a: Float,
        _ out: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        let zero = V(repeating: 0)
        let va = V(repeating: a)
        var i = 0
        while i + width <= n {
            store(zero.replacing(with: load(dy, i), where: load(y, i) .> zero) * va, out, i)
            i += width
        }
        while i < n {
            out[i] = (y[i] > 0 ? dy[i] : 0) * a
            i += 1
        }
    }

    /// `out[i] = Swift.max(x[i], 0)`; `out` may alias `x`.
    @inlinable
    public static func relu(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        let zero = V(repeating: 0)
        var i = 0
        while i + width <= n {
            store(pointwiseMax(load(x, i), zero), out, i)
            i += width
        }
        while i < n {
            out[i] = Swift.max(x[i], 0)
            i += 1
        }
    }

    /// `dx[i] = y[i] > 0 ? dy[i] : 0`, the ReLU backward from its output `y`; `dx` may alias `dy`.
    @inlinable
    public static func reluBackward(
        _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        let zero = V(repeating: 0)
        var i = 0
        while i + width <= n {
            let mask = load(y, i) .> zero
            store(zero.replacing(with: load(dy, i), where: mask), dx, i)
            i += width
        }
        while i < n {
            dx[i] = y[i] > 0 ? dy[i] : 0
            i += 1
        }
    }

    /// Sum of `x[0..<n]`, with four independent SIMD accumulators for throughput and accuracy.
    @inlinable
    public static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0 = V()
        var s1 = V()
        var s2 = V()
        var s3 = V()
        var i = 0
        while i + 4 * width <= n {
            s0 += load(x, i)
            s1 += load(x, i + width)
            s2 += load(x, i + 2 * width)
            s3 += load(x, i + 3 * width)
            i += 4 * width
        }
        while i + width <= n {
            s0 += load(x, i)
            i += width
        }
        var total = ((s0 + s1) + (s2 + s3)).sum()
        while i < n {
            total += x[i]
            i += 1
        }
        return total
    }

    /// Dot product of `a` and `b`.
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0 = V()
        var s1 = V()
        var i = 0
        while i + 2 * width <= n {
            s0.addProduct(load(a, i), load(b, i))
            s1.addProduct(load(a, i + width), load(b, i + width))
            i += 2 * width
        }
        while i + width <= n {
            s0.addProduct(load(a, i), load(b, i))
            i += width
        }
        var total = (s0 + s1).sum()
        while i < n {
            total += a[i] * b[i]
            i += 1
        }
        return total
    }

    /// `sum(x - shift)` and `sum((x - shift)^2)` over `x[0..<n]`, in one pass. With a shift near
    /// the mean (BatchNorm uses a sample of the channel) the variance `squares/n - (sum/n)^2`
    /// stays accurate without a second pass for the mean.
    @inlinable
    public static func shiftedMoments(_ x: UnsafePointer<Float>, _ n: Int, shift: Float) -> (sum: Float, squares: Float)
    {
        let vs = V(repeating: shift)
        var s = V()
        var q = V()
        var i = 0
        while i + width <= n {
            let d = load(x, i) - vs
            s += d
            q.addProduct(d, d)
            i += width
        }
        var ts = s.sum()
        var tq = q.sum()
        while i < n {
            let d = x[i] - shift
            ts += d
            tq += d * d
            i += 1
        }
        return (ts, tq)
    }

    /// `sum(a)` and `sum(a * b)` in one pass over both (BatchNorm's backward needs both).
    @inlinable
    public static func sumAndDot(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int
    ) -> (sum: Float, dot: Float) {
        var s = V()
        var d = V()
        var i = 0
        while i + width <= n {
            let va = load(a, i)
            s += va
            d.addProduct(va, load(b, i))
            i += width
        }
        var ts = s.sum()
        var td = d.sum()
        while i < n {
            ts += a[i]
            td += a[i] * b[i]
            i += 1
        }
        return (ts, td)
    }

    /// `out[i] = x[i] * a + b` (an affine map with scalar coefficients); `out` may alias `x`.
    @inlinable
    public static func affine(
        _ x: UnsafePointer<Float>, _ a: Float, _ b: Float, _ out: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        let va = V(repeating: a)
        let vb = V(repeating: b)
        var i = 0
        while i + width <= n {
            store(load(x, i) * va + vb, out, i)
            i += width
        }
        while i < n {
            out[i] = x[i] * a + b
            i += 1
        }
    }

    /// Maximum of `x[0..<n]` (`-infinity` for an empty buffer).
    @inlinable
    public static func maximum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = V(repeating: -.infinity)
        var i = 0
        while i + width <= n {
            m = pointwiseMax(m, load(x, i))
            i += width
        }
        var r = m.max()
        while i < n {
            r = Swift.max(r, x[i])
            i += 1
        }
        return r
    }
}

extension Vector {
    /// `out[i] = a * x[i] + b * y[i] + c`; `out` may alias `x` or `y`.
    @inlinable
    public static func combine(
        _ x: UnsafePointer<Float>, _ a: Float, _ y: UnsafePointer<Float>, _ b: Float, _ c: Float,
        _ out: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        let va = V(repeating: a)
        let vb = V(repeating: b)
        let vc = V(repeating: c)
        var i = 0
        while i + width <= n {
            store(load(x, i) * va + load(y, i) * vb + vc, out, i)
            i += width
        }
        while i < n {
            out[i] = a * x[i] + b * y[i] + c
            i += 1
        }
    }

    /// `x[i] += c` for a scalar `c`.
    @inlinable
    public static func addScalar(_ x: UnsafeMutablePointer<Float>, _ c: Float, _ n: Int) {
        let vc = V(repeating: c)
        var i = 0
        while i + width <= n {
            store(load(x, i) + vc, x, i)
            i += width
        }
        while i < n {
            x[i] += c
            i += 1
        }
    }
}
