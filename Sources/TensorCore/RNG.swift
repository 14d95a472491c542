import Foundation

/// A seeded, reproducible random source (xoshiro256**, seeded through SplitMix64).
///
/// All randomness in rrmd flows from one of these; its state can be saved and restored so a
/// resumed run draws the same numbers as an uninterrupted one.
public struct RNG: RandomNumberGenerator, Equatable, Codable, Sendable {
    /// The four words of generator state.
    public var state: (UInt64, UInt64, UInt64, UInt64) {
        get { (s0, s1, s2, s3) }
        set { (s0, s1, s2, s3) = newValue }
    }
    private var s0, s1, s2, s3: UInt64

    /// A generator whose whole sequence is fixed by `seed`.
    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix()
        s1 = splitmix()
        s2 = splitmix()
        s3 = splitmix()
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// A uniform Float in [0, 1) with 24 random bits.
    public mutating func uniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// A uniform Float in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * uniform() }

    /// A standard normal sample (Box–Muller).
    public mutating func normal() -> Float {
        let u1 = max(Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0), 1e-300)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }

    /// A uniform integer in `0..<bound` without modulo bias.
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0, "RNG.below: bound must be positive, got \(bound)")
        return Int(next(upperBound: UInt64(bound)))
    }

    /// A derived generator for an independent stream (e.g. one per epoch or per worker).
    public func fork(_ stream: UInt64) -> RNG {
        var copy = self
        return RNG(seed: copy.next() ^ (stream &* 0x9E37_79B9_7F4A_7C15))
    }

    /// Equal when the states match.
    public static func == (a: RNG, b: RNG) -> Bool {
        a.s0 == b.s0 && a.s1 == b.s1 && a.s2 == b.s2 && a.s3 == b.s3
    }
}

@inline(__always) private func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Foundation.cos(x) }

extension Array {
    /// Fisher–Yates shuffle driven by `rng`, so the order depends only on the seed.
    public mutating func seededShuffle(using rng: inout RNG) {
        if count < 2 { return }
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = rng.below(i + 1)
            if i != j { swapAt(i, j) }
        }
    }
}
