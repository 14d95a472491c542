import Foundation

/// One timed workload: images/s per measurement and how busy the rest of the machine was.
public struct BenchMeasurement: Codable, Sendable {
    /// Median images/s over the measurements.
    public var imagesPerSecond: Double
    /// Every measurement's images/s.
    public var all: [Double]
    /// Cores used by other processes during each measurement (above ~0.3 is contended).
    public var otherCores: [Double]
    /// Iterations per measurement.
    public var iterations: Int
}

/// Times workloads the way `shared/peers/timing.py` does, so figures compare side by side:
/// warm-up calls, then `repeats` measurements of enough iterations to last `minSeconds`.
public struct BenchTimer: Sendable {
    /// Measurements per workload.
    public var repeats: Int
    /// Minimum length of one measurement.
    public var minSeconds: Double
    /// Untimed calls first (allocator growth, caches).
    public var warmup: Int

    /// A timer; the defaults match the peers' (5 x 2 s after 3 warm-up calls).
    public init(repeats: Int = 5, minSeconds: Double = 2, warmup: Int = 3) {
        self.repeats = max(1, repeats)
        self.minSeconds = minSeconds
        self.warmup = max(1, warmup)
    }

    /// Times `body`, which processes `images` images per call.
    public func measure(images: Int, _ body: () -> Void) -> BenchMeasurement {
        for _ in 0..<(warmup - 1) { body() }
        let t0 = now()
        body()
        let one = now() - t0
        let iterations = max(1, Int((minSeconds / max(one, 1e-6)).rounded()))
        var rates: [Double] = []
        var other: [Double] = []
        for _ in 0..<repeats {
            let busy0 = systemBusyTicks()
            let self0 = selfTicks()
            let start = now()
            for _ in 0..<iterations { body() }
            let wall = now() - start
            let others = Double((systemBusyTicks() - busy0) - (selfTicks() - self0)) / ticksPerSecond / wall
            rates.append(Double(images * iterations) / wall)
            other.append((max(0, others) * 100).rounded() / 100)
        }
        return BenchMeasurement(imagesPerSecond: median(rates), all: rates, otherCores: other, iterations: iterations)
    }
}

/// Median of a non-empty list.
func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

/// Busy jiffies of the whole machine (user + nice + system + irq + softirq + steal).
func systemBusyTicks() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
        let line = text.split(separator: "\n").first
    else { return 0 }
    let v = line.split(separator: " ").dropFirst().prefix(8).compactMap { Int($0) }
    guard v.count == 8 else { return 0 }
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
}

/// Jiffies this process has used (utime + stime).
func selfTicks() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
    else { return 0 }
    let fields = text[text.index(close, offsetBy: 2)...].split(separator: " ")
    guard fields.count > 12, let u = Int(fields[11]), let s = Int(fields[12]) else { return 0 }
    return u + s
}
