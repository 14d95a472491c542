import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// How many more bytes this process can expect to allocate: the least of the address space its
/// `ulimit -v` leaves, its cgroup's `memory.max` headroom (a unit's `MemoryMax=`) and the
/// system's `MemAvailable`. Swift stops the process on a failed allocation (and the kernel's OOM
/// killer stops a cgroup that overcommits), so code whose sizes come from a file or from the
/// configuration asks first and turns "too big for this machine" into a typed error.
public enum MemoryBudget {
    /// Throws `NotEnoughMemory` when `bytes` more cannot be allocated; amounts under 64 MiB are
    /// not checked (every limit rrmd runs under leaves that much, and reading the limits costs
    /// a few system calls).
    public static func check(
        _ bytes: Int, for what: @autoclosure () -> String, whatToDo: @autoclosure () -> String
    ) throws {
        guard bytes > 64 << 20, let available = available(), bytes > available else { return }
        throw NotEnoughMemory(what: what(), needed: bytes, available: available, whatToDo: whatToDo())
    }

    /// The headroom in bytes, or nil when no limit can be read (then nothing is refused).
    public static func available() -> Int? {
        var limits: [Int] = []
        var r = rlimit()
        if getrlimit(Int32(RLIMIT_AS.rawValue), &r) == 0, r.rlim_cur != rlim_t.max, let mapped = statusField("VmSize") {
            limits.append(Int(clamping: r.rlim_cur) - mapped)
        }
        if let cgroup = cgroupHeadroom() { limits.append(cgroup) }
        if let free = meminfoField("MemAvailable") { limits.append(free) }
        return limits.min()
    }

    /// `memory.max - memory.current` of this process's cgroup (v2), when it has a limit.
    static func cgroupHeadroom() -> Int? {
        guard let line = text("/proc/self/cgroup")?.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) else {
            return nil
        }
        let directory = "/sys/fs/cgroup" + line.dropFirst(3)
        guard
            let max = text(directory + "/memory.max").flatMap({
                Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }),
            let current = text(directory + "/memory.current").flatMap({
                Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
            })
        else {
            return nil  // "max" (no limit), or no cgroup v2
        }
        return max - current
    }

    /// A `kB` field of /proc/self/status, in bytes.
    static func statusField(_ name: String) -> Int? { kilobytes(name, in: "/proc/self/status") }

    /// A `kB` field of /proc/meminfo, in bytes.
    static func meminfoField(_ name: String) -> Int? { kilobytes(name, in: "/proc/meminfo") }

    private static func kilobytes(_ name: String, in path: String) -> Int? {
        guard let line = text(path)?.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else {
            return nil
        }
        let digits = line.dropFirst(name.count + 1).split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) }
        return digits.map { $0 * 1024 }
    }

    private static func text(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }
}

/// Work refused before it started because the memory it needs cannot be had: what it was, the
/// bytes it needs and can get, and what a person can change.
public struct NotEnoughMemory: Error, CustomStringConvertible, Equatable, Sendable {
    /// The work, e.g. "training resnet18 x8 with batches of 4096".
    public var what: String
    /// Bytes the work needs (an estimate that errs high) and bytes that can be allocated.
    public var needed, available: Int
    /// What to change.
    public var whatToDo: String

    /// Makes the error.
    public init(what: String, needed: Int, available: Int, whatToDo: String) {
        self.what = what
        self.needed = needed
        self.available = available
        self.whatToDo = whatToDo
    }

    public var description: String {
        "\(what) needs about \(Self.mebibytes(needed)) of memory but only \(Self.mebibytes(max(available, 0))) can be "
            + "allocated "
            + "(the least of ulimit -v, the service's MemoryMax= and the machine's available memory); \(whatToDo)"
    }

    static func mebibytes(_ bytes: Int) -> String {
        bytes >= 10 << 30 ? "\(bytes >> 30) GiB" : "\(bytes >> 20) MiB"
    }
}
