/// Per-worker scratch buffers that grow to the largest request and are then reused, so hot
/// loops (im2col columns, per-worker gradient accumulators) never allocate once warmed up.
///
/// Worker `w` (the chunk index `Compute.parallelChunks` passes) owns its row of slots; only one
/// compute stream (one training or attack loop) may use the pool at a time.
public enum Scratch {
    /// Maximum worker index + 1 the pool serves.
    public static let maxWorkers = 64
    /// Independent buffers each worker may hold at once.
    public static let slotsPerWorker = ScratchSlot.allCases.count

    private final class Slot {
        var pointer: UnsafeMutablePointer<Float>?
        var capacity = 0
    }

    nonisolated(unsafe) private static let slots: [Slot] = (0..<(maxWorkers * slotsPerWorker)).map { _ in Slot() }

    /// A buffer of at least `count` Floats for `worker`'s `slot`; contents are unspecified.
    @inline(__always)
    public static func buffer(worker: Int, slot: ScratchSlot, count: Int) -> UnsafeMutablePointer<Float> {
        buffer(worker: worker, slot: slot.rawValue, count: count)
    }

    /// A buffer of at least `count` Floats for `worker`'s slot number `slot`; contents are unspecified.
    public static func buffer(worker: Int, slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        precondition(
            worker >= 0 && worker < maxWorkers && slot >= 0 && slot < slotsPerWorker,
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

/// What each of a worker's scratch buffers holds. A convolution call uses each role at most once
/// at a time; the roles that share a slot are never live together.
public enum ScratchSlot: Int, CaseIterable {
    /// im2col columns; in a Winograd weight gradient, the transformed sums instead.
    case columns = 0
    /// This worker's share of a weight gradient, summed over workers after the parallel loop.
    case weightGradient = 1
    /// Zero-padded input images; in a Winograd weight gradient, its transform scratch instead.
    case paddedInput = 2
    /// Padded or phase-split output planes, or the Winograd forward transform's scratch.
    case output = 3
    /// Images held for a call: gathered inputs of a weight gradient, or an output block that is
    /// not kept (forward passes whose output only feeds an epilogue).
    case images = 4
    /// Output gradients gathered for a weight gradient.
    case outputGradients = 5
}
