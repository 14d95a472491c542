/// Per-worker scratch buffers that grow to the largest request and are then reused, so hot
/// loops (im2col columns, per-worker gradient accumulators) never allocate once warmed up.
///
/// Worker `w` (the chunk index `Compute.parallelChunks` passes) owns its row of slots; only one
/// compute stream (one training or attack loop) may use the pool at a time.
public enum Scratch {
    /// Maximum worker index + 1 the pool serves.
    public static let maxWorkers = 64
    /// Independent buffers each worker may hold at once.
    public static let slotsPerWorker = 6

    private final class Slot {
        var pointer: UnsafeMutablePointer<Float>?
        var capacity = 0
    }

    nonisolated(unsafe) private static let slots: [Slot] = (0..<(maxWorkers * slotsPerWorker)).map { _ in Slot() }

    /// A buffer of at least `count` Floats for `worker`'s `slot`; contents are unspecified.
    public static func buffer(worker: Int, slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        precondition(worker >= 0 && worker < maxWorkers && slot >= 0 && slot < slotsPerWorker,
                     "Scratch: worker \(worker) slot \(slot) outside \(maxWorkers)x\(slotsPerWorker)")
        let s = slots[worker * slotsPerWorker + slot]
        if s.capacity < count || s.pointer == nil {
            s.pointer?.deallocate()
            let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
            s.pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
            s.capacity = count
        }
        return s.pointer!
    }
}
