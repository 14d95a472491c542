/// Resource caps applied while reading a checkpoint, so that a hostile or damaged file cannot
/// make the reader allocate or work without bound (design.md §3: "readers never trust the file").
///
/// The defaults fit any checkpoint this project makes (the largest is a few hundred MB) with
/// room to spare; tests pass small caps to exercise the refusals cheaply.
public struct ReadLimits: Sendable, Equatable {
    /// Largest safetensors content accepted, in bytes: the size of a plain file, or the
    /// decompressed size of a `.safetensors.zst`. Default 4 GiB; range 0...Int.max.
    public var maxContentSize: Int
    /// Largest zstd window accepted, as log2 of bytes. Default 27 (128 MiB), the most any
    /// `zstd` level up to `--ultra -22` uses without `--long`; range 10...31. The window is
    /// memory the decoder must allocate, so the frame cannot choose it freely.
    public var maxWindowLog: Int

    /// Caps as given; out-of-range values are programmer errors and stop the process.
    public init(maxContentSize: Int = 4 << 30, maxWindowLog: Int = 27) {
        precondition(maxContentSize >= 0, "ReadLimits: maxContentSize \(maxContentSize) must be >= 0")
        // zstd's own bounds for ZSTD_d_windowLogMax on 64-bit (ZSTD_WINDOWLOG_ABSOLUTEMIN...MAX_64).
        precondition((10...31).contains(maxWindowLog), "ReadLimits: maxWindowLog \(maxWindowLog) must be in 10...31")
        self.maxContentSize = maxContentSize
        self.maxWindowLog = maxWindowLog
    }

    /// The default caps: 4 GiB of content, a 128 MiB zstd window.
    public static let standard = ReadLimits()

    /// The largest window in bytes.
    var maxWindowSize: UInt64 { 1 << UInt64(maxWindowLog) }
}
