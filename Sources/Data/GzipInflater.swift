import CZlib

/// Streaming gunzip of an in-memory gzip file, with a cap on the output size.
///
/// Streaming lets a reader inflate only as much as a header says it needs, so a small file that
/// claims to hold a few bytes but inflates to gigabytes is refused after the first extra byte.
/// Concatenated gzip members (what `cat a.gz b.gz` makes) are decoded as one stream, like
/// `gunzip` does; any other bytes after a member are reported as corrupt.
final class GzipInflater {
    private let source: FileBytes
    private let stream: UnsafeMutablePointer<z_stream>  // zlib keeps a pointer back to it
    private let limit: Int
    /// Decompressed bytes produced so far.
    private(set) var produced = 0
    private var finished = false

    /// Prepares to inflate `source`, which must start with the gzip magic.
    init(source: FileBytes, limit: Int = DataLimits.maxBytes) throws {
        self.source = source
        self.limit = limit
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        stream.pointee.next_in = source.base
        stream.pointee.avail_in = 0
        // 16 + 15: gzip wrapper (header and CRC-32/ISIZE trailer checked by zlib), 32 KiB window.
        let rc = inflateInit2_(stream, 16 + 15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        if rc != Z_OK {
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw DataError.unreadable(path: source.path, reason: "zlib initialisation failed (\(rc))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Compressed bytes consumed so far (for error offsets).
    private var consumed: Int { (stream.pointee.next_in - source.base) }

    /// Writes up to `count` decompressed bytes at `dest`; returns fewer only at the end of data.
    func read(into dest: UnsafeMutablePointer<UInt8>, count: Int) throws -> Int {
        var written = 0
        while written < count && !finished {
            let allowed = limit - produced
            if allowed <= 0 {
                // At the cap: the content is too large only if the stream has another byte.
                var probe: UInt8 = 0
                if try inflateSome(into: &probe, count: 1) > 0 {
                    throw DataError.tooLarge(path: source.path, what: "decompressed content", limit: limit)
                }
                break
            }
            let chunk = min(count - written, allowed, Int(UInt32.max))
            written += try inflateSome(into: dest + written, count: chunk)
        }
        return written
    }

    /// One or more `inflate` calls until `count` bytes are produced or the data ends.
    private func inflateSome(into dest: UnsafeMutablePointer<UInt8>, count: Int) throws -> Int {
        let s = stream
        s.pointee.next_out = dest
        s.pointee.avail_out = UInt32(count)
        while s.pointee.avail_out > 0 && !finished {
            if s.pointee.avail_in == 0 {
                let left = source.count - consumed
                s.pointee.avail_in = UInt32(min(left, Int(UInt32.max)))
            }
            let rc = inflate(s, Z_NO_FLUSH)
            switch rc {
            case Z_OK:
                continue
            case Z_STREAM_END:
                try endOfMember()
            case Z_BUF_ERROR:  // no progress possible: the input ran out mid-stream
                throw DataError.gzipCorrupt(
                    path: source.path, offset: consumed,
                    reason: "compressed data ends before the gzip stream does (file truncated?)")
            default:
                let msg = s.pointee.msg.map { String(cString: $0) } ?? "zlib error \(rc)"
                throw DataError.gzipCorrupt(path: source.path, offset: consumed, reason: msg)
            }
        }
        let n = count - Int(s.pointee.avail_out)
        produced += n
        return n
    }

    /// After a member: stop at the end of the file, continue into a following member, or reject
    /// anything else.
    private func endOfMember() throws {
        let at = consumed
        let left = source.count - at
        if left == 0 {
            finished = true
            return
        }
        if left >= 2 && source.base[at] == 0x1F && source.base[at + 1] == 0x8B {
            if inflateReset(stream) != Z_OK {
                throw DataError.gzipCorrupt(path: source.path, offset: at, reason: "cannot reset zlib")
            }
            return
        }
        throw DataError.gzipCorrupt(
            path: source.path, offset: at,
            reason: "\(left) bytes of trailing garbage after the last gzip member")
    }
}
