import CBLAS
import CMalloc
import Foundation

/// Process-wide compute settings and the one place work is split across cores.
///
/// rrmd parallelises over independent pieces of work (images of a batch, channels) with its own
/// threads and keeps OpenBLAS single-threaded inside those regions, so the two never
/// oversubscribe the cores. `withBLASThreads` lends OpenBLAS all threads for one large GEMM.
public enum Compute {
    /// Number of worker threads used by `parallelFor`; at least 1.
    public private(set) nonisolated(unsafe) static var threads: Int = defaultThreads()

    /// The number of cores this process may run on.
    public static func defaultThreads() -> Int {
        max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Sets the worker-thread count (values below 1 mean "all cores") and pins OpenBLAS to one
    /// thread, since rrmd's own loops provide the parallelism.
    public static func configure(threads requested: Int) {
        threads = requested >= 1 ? requested : defaultThreads()
        openblas_set_num_threads(1)
        // Tensors are allocated on whichever worker thread needs them and freed on another;
        // glibc then gives each thread its own arena and keeps the freed memory there, and a
        // long APGD evaluation grew to 8 GB of resident memory that way (1,200 images: 1.5 GB
        // with the default, 0.9 GB with two arenas, the same speed). See `releaseFreeMemory`.
        _ = mallopt(M_ARENA_MAX, 2)
    }

    /// Returns freed memory to the system: the buffers `BufferPool` keeps for reuse and malloc's
    /// free heap. Long loops call it between large units of work (an attack batch, an epoch): it
    /// costs a few milliseconds plus re-faulting the next step's buffers, and keeps resident
    /// memory near what is live instead of the high-water mark of every arena.
    public static func releaseFreeMemory() {
        BufferPool.drain()
        _ = malloc_trim(0)
    }

    /// Pins OpenBLAS to one thread the first time any kernel runs, so a caller that never
    /// called `configure` still does not oversubscribe the cores.
    static let blasPinned: Void = openblas_set_num_threads(1)

    /// Runs `body` with OpenBLAS allowed `threads` threads (for one large GEMM that is not split
    /// by rrmd), then pins it back to one.
    public static func withBLASThreads<R>(_ body: () throws -> R) rethrows -> R {
        _ = blasPinned
        openblas_set_num_threads(Int32(threads))
        defer { openblas_set_num_threads(1) }
        return try body()
    }

    /// Splits `0..<count` into at most `threads` contiguous chunks and runs `body` on each chunk
    /// concurrently. Chunks are deterministic for a given `count` and thread count.
    public static func parallelFor(_ count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let chunks = min(threads, max(1, count / max(1, minChunk)))
        if chunks <= 1 {
            body(0..<count)
            return
        }
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = count * c / chunks
            let hi = count * (c + 1) / chunks
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Runs `body(worker, range)` like `parallelFor`, also passing the chunk's index so each worker
    /// can use its own scratch buffer; returns the number of chunks used.
    @discardableResult
    public static func parallelChunks(_ count: Int, _ body: (Int, Range<Int>) -> Void) -> Int {
        if count <= 0 { return 0 }
        let chunks = min(threads, count)
        if chunks <= 1 {
            body(0, 0..<count)
            return 1
        }
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = count * c / chunks
            let hi = count * (c + 1) / chunks
            if lo < hi { body(c, lo..<hi) }
        }
        return chunks
    }
}
