import CZstd

/// The zstd framing of `.safetensors.zst` checkpoints: one frame with the content size in its
/// header and an xxHash64 content checksum (design.md §3), so `zstd -d` restores the plain file
/// and the reader can verify it.
enum Zstd {
    /// Frame magic number 0xFD2FB528, as stored (little-endian).
    static let magic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]

    /// `ZSTD_CONTENTSIZE_UNKNOWN` and `_ERROR`, which Swift does not import (they are
    /// expression macros).
    private static let contentSizeUnknown = UInt64.max
    private static let contentSizeError = UInt64.max - 1

    /// True if `bytes` starts with a zstd frame or a skippable frame (which we then refuse with
    /// a zstd error rather than a confusing safetensors header error). Unambiguous: read as a
    /// safetensors header length, either magic is over 400 MB, above `maxHeaderLength`.
    static func isFrame(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 4 else { return false }
        if bytes[0..<4].elementsEqual(magic) { return true }
        // Skippable frames: 0x184D2A50...0x184D2A5F, little-endian.
        return bytes[0] & 0xF0 == 0x50 && bytes[1] == 0x2A && bytes[2] == 0x4D && bytes[3] == 0x18
    }

    /// The largest a single frame holding `contentSize` bytes can be (libzstd's worst case for
    /// incompressible input), so files above it can be refused unread.
    static func maxFrameSize(contentSize: Int) -> UInt64 {
        let bound = ZSTD_compressBound(contentSize)
        return ZSTD_isError(bound) != 0 ? UInt64.max : UInt64(bound)
    }

    /// Levels libzstd accepts (negative levels are its fast modes).
    static var levels: ClosedRange<Int> { Int(ZSTD_minCLevel())...Int(ZSTD_maxCLevel()) }

    /// `bytes` compressed into one frame at `level`, with content size and checksum.
    static func compress(_ bytes: [UInt8], level: Int) throws -> [UInt8] {
        precondition(levels.contains(level), "zstd level \(level) is outside \(levels)")
        guard let cctx = ZSTD_createCCtx() else {
            throw CheckpointError.compressionFailed(reason: "cannot allocate a compression context")
        }
        defer { ZSTD_freeCCtx(cctx) }
        for (parameter, value) in [
            (ZSTD_c_compressionLevel, Int32(level)), (ZSTD_c_checksumFlag, 1), (ZSTD_c_contentSizeFlag, 1),
        ] {
            let r = ZSTD_CCtx_setParameter(cctx, parameter, value)
            if ZSTD_isError(r) != 0 { throw CheckpointError.compressionFailed(reason: errorName(r)) }
        }
        let bound = ZSTD_compressBound(bytes.count)
        if ZSTD_isError(bound) != 0 {
            throw CheckpointError.compressionFailed(reason: "input of \(bytes.count) bytes is too large for zstd")
        }
        var failure: Int?
        let out = [UInt8](unsafeUninitializedCapacity: bound) { dst, initialized in
            // ZSTD_compress2 always writes the size of a one-shot input into the frame header.
            let r = bytes.withUnsafeBytes { src in
                ZSTD_compress2(cctx, dst.baseAddress, bound, src.baseAddress, src.count)
            }
            if ZSTD_isError(r) != 0 {
                failure = r
                initialized = 0
            } else {
                initialized = r
            }
        }
        if let failure { throw CheckpointError.compressionFailed(reason: errorName(failure)) }
        return out
    }

    /// The content of the single zstd frame `bytes`, within `limits`; `source` names the input
    /// in errors.
    ///
    /// Everything that can be refused before decoding is: skippable frames, a window above the
    /// cap, a declared content size above the cap, a frame cut short, bytes after the frame.
    /// Decoding then streams through a fixed-size buffer, so memory grows only with output that
    /// was actually produced and stops just past the cap when the size was not declared.
    ///
    /// `contentSize`, when given, is asked about the output decoded so far (each time it grows)
    /// until it answers: nil while it needs more bytes, the total size the content declares of
    /// itself once it knows (a safetensors header does, in its first bytes), or an error, which
    /// stops decoding at once. From then on that size is the cap: a file whose header is invalid
    /// is refused after its first chunk, and one that inflates past what its header declares
    /// stops there, so memory follows what a valid file of that header would need.
    static func decompress(
        _ bytes: [UInt8], limits: ReadLimits, source: String,
        contentSize: (([UInt8]) throws -> Int?)? = nil
    ) throws -> [UInt8] {
        try bytes.withUnsafeBytes { src -> [UInt8] in
            var header = ZSTD_frameHeader()
            let h = ZSTD_getFrameHeader(&header, src.baseAddress, src.count)
            if ZSTD_isError(h) != 0 { throw error(h, source: source, size: src.count) }
            if h > 0 { throw CheckpointError.zstdTruncated(source: source, size: src.count) }
            guard header.frameType == ZSTD_frame else {
                throw CheckpointError.zstdCorrupt(
                    source: source, reason: "the file starts with a skippable frame, not a compressed one")
            }
            if header.windowSize > limits.maxWindowSize {
                throw CheckpointError.zstdWindowTooLarge(
                    source: source, windowSize: header.windowSize, limit: limits.maxWindowSize)
            }
            let declared: UInt64? = header.frameContentSize == contentSizeUnknown ? nil : header.frameContentSize
            if let declared, declared == contentSizeError || declared > UInt64(limits.maxContentSize) {
                throw CheckpointError.decompressedTooLarge(
                    source: source, declared: declared, limit: limits.maxContentSize)
            }

            // Walks block headers only (no decoding), so a cut or padded file is reported as
            // such before any output is allocated.
            let frameSize = ZSTD_findFrameCompressedSize(src.baseAddress, src.count)
            if ZSTD_isError(frameSize) != 0 { throw error(frameSize, source: source, size: src.count) }
            if frameSize < src.count {
                throw CheckpointError.zstdTrailingData(
                    source: source, offset: frameSize, trailing: src.count - frameSize)
            }

            guard let dctx = ZSTD_createDCtx() else {
                throw CheckpointError.zstdCorrupt(
                    source: source, reason: "cannot allocate a decompression context (out of memory?)")
            }
            defer { ZSTD_freeDCtx(dctx) }
            // Belt and braces: libzstd enforces the same window cap while decoding.
            let p = ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, Int32(limits.maxWindowLog))
            if ZSTD_isError(p) != 0 { throw error(p, source: source, size: src.count) }

            var out: [UInt8] = []
            // A declared size is trusted for the reservation only as far as the input could
            // plausibly expand (weights barely compress; 16x or 64 MiB is generous); beyond that
            // the array grows by doubling, so a lying header costs no more than real output.
            if let declared {
                out.reserveCapacity(Int(Swift.min(declared, UInt64(Swift.max(64 << 20, 16 * src.count)))))
            }
            let chunkSize = Swift.max(ZSTD_DStreamOutSize(), 1 << 20)
            let chunk = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 16)
            defer { chunk.deallocate() }
            var input = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
            var selfDeclared: Int?  // what the content says of its own size, once it has said it
            while true {
                var output = ZSTD_outBuffer(dst: chunk, size: chunkSize, pos: 0)
                let r = ZSTD_decompressStream(dctx, &output, &input)
                if ZSTD_isError(r) != 0 { throw error(r, source: source, size: src.count) }
                if out.count + output.pos > limits.maxContentSize {
                    throw CheckpointError.decompressedTooLarge(
                        source: source, declared: declared, limit: limits.maxContentSize)
                }
                if let selfDeclared, out.count + output.pos > selfDeclared {
                    throw CheckpointError.contentBeyondHeader(source: source, declared: selfDeclared)
                }
                out.append(contentsOf: UnsafeRawBufferPointer(start: chunk, count: output.pos))
                if selfDeclared == nil, output.pos > 0, let contentSize, let size = try contentSize(out) {
                    if out.count > size { throw CheckpointError.contentBeyondHeader(source: source, declared: size) }
                    selfDeclared = size
                    // One allocation of the final size instead of doubling (which would hold up
                    // to three times the content while it grows).
                    out.reserveCapacity(size)
                }
                if r == 0 { break }  // frame complete, checksum verified
                // All input consumed and the output not full: the decoder is waiting for bytes
                // that do not exist.
                if input.pos == input.size && output.pos < output.size {
                    throw CheckpointError.zstdTruncated(source: source, size: src.count)
                }
            }
            return out
        }
    }

    /// The typed error for a libzstd error code.
    private static func error(_ code: Int, source: String, size: Int) -> CheckpointError {
        switch ZSTD_getErrorCode(code) {
        case ZSTD_error_checksum_wrong: return .zstdChecksumMismatch(source: source)
        case ZSTD_error_srcSize_wrong: return .zstdTruncated(source: source, size: size)
        default: return .zstdCorrupt(source: source, reason: errorName(code))
        }
    }

    /// libzstd's text for an error code.
    private static func errorName(_ code: Int) -> String { String(cString: ZSTD_getErrorName(code)) }
}
