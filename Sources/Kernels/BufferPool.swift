import Foundation

/// Recycles large Float buffers between tensors of the same size.
///
/// A training or attack step allocates the same activation and gradient sizes every time. Left to
/// malloc, each of those megabyte-sized blocks is a fresh mapping that the kernel must fault in
/// and zero page by page: 16 % of a ResNet-20 train step's CPU time went to `clear_page`, and
/// blocks freed on another thread's arena fragmented a long evaluation to 8 GB. The pool keeps
/// freed buffers, by exact element count, and hands them back to the next request of that size,
/// so a warmed-up loop maps no new memory at all.
///
/// Buffers below `minimumCount` elements stay with malloc, whose small-size bins already reuse
/// them cheaply. The pool holds at most `capacityBytes`; `drain` returns everything to the
/// system (`Compute.releaseFreeMemory` calls it between epochs and attack batches).
public enum BufferPool {
    /// Smallest buffer, in elements, the pool recycles (64 KiB).
    public static let minimumCount = 16_384
    /// Upper bound on the bytes kept for reuse; a buffer given back beyond it is freed.
    public nonisolated(unsafe) static var capacityBytes = 4 << 30

    private final class State: @unchecked Sendable {
        let lock = NSLock()
        var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
        var cachedBytes = 0
        // Bytes of tensor buffers handed out and not yet given back, and their high-water mark:
        // what a workload holds at once, for memory estimates (`peakLiveBytes`).
        var liveBytes = 0
        var peakLiveBytes = 0
    }

    private static let state = State()

    /// A 64-byte-aligned buffer of exactly `count` elements (contents unspecified); give it back
    /// with `recycle(_:count:)`.
    public static func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        let n = max(count, 1)
        let s = state
        s.lock.lock()
        let reused = n >= minimumCount ? s.free[n]?.popLast() : nil
        if reused != nil { s.cachedBytes -= n * 4 }
        s.liveBytes += n * 4
        s.peakLiveBytes = max(s.peakLiveBytes, s.liveBytes)
        s.lock.unlock()
        if let reused { return reused }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: n * 4, alignment: 64)
        return raw.bindMemory(to: Float.self, capacity: n)
    }

    /// Returns a buffer obtained from `take(count)`: kept for the next request of that size, or
    /// freed when it is small or the pool is full.
    public static func recycle(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        let n = max(count, 1)
        let s = state
        s.lock.lock()
        s.liveBytes -= n * 4
        let keep = n >= minimumCount && s.cachedBytes + n * 4 <= capacityBytes
        if keep {
            s.free[n, default: []].append(pointer)
            s.cachedBytes += n * 4
        }
        s.lock.unlock()
        if keep { return }
        UnsafeMutableRawPointer(pointer).deallocate()
    }

    /// Frees every buffer the pool holds.
    public static func drain() {
        let s = state
        s.lock.lock()
        let lists = s.free
        s.free = [:]
        s.cachedBytes = 0
        s.lock.unlock()
        for list in lists.values {
            for p in list { UnsafeMutableRawPointer(p).deallocate() }
        }
    }

    /// The most bytes of tensor buffers (of every size) held at once since the last `resetPeak()`.
    public static var peakLiveBytes: Int {
        state.lock.lock()
        defer { state.lock.unlock() }
        return state.peakLiveBytes
    }

    /// Bytes of tensor buffers held right now.
    public static var liveBytes: Int {
        state.lock.lock()
        defer { state.lock.unlock() }
        return state.liveBytes
    }

    /// Restarts `peakLiveBytes` from what is held now.
    public static func resetPeak() {
        state.lock.lock()
        state.peakLiveBytes = state.liveBytes
        state.lock.unlock()
    }

    /// Bytes currently held for reuse.
    public static var cachedBytes: Int {
        state.lock.lock()
        defer { state.lock.unlock() }
        return state.cachedBytes
    }
}
