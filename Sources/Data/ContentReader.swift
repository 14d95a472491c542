/// Reads a file's content front to back, gunzipping it when it starts with the gzip magic.
///
/// Gzip is recognised by content, not by name, so `x.gz` that is really plain (or the reverse)
/// still loads. Readers ask for exactly the bytes their header promises; a short read is a
/// truncated file and any extra byte is trailing data.
final class ContentReader {
    /// The file being read, for error messages.
    let path: String
    /// True when the content is being gunzipped.
    let isGzip: Bool
    /// Content bytes consumed so far; the byte offset used in error messages.
    private(set) var offset = 0
    private let file: FileBytes
    private let inflater: GzipInflater?

    /// Opens `path`; `maxBytes` caps both the file and its decompressed content.
    init(path: String, maxBytes: Int = DataLimits.maxBytes, hint: String = "") throws {
        self.path = path
        file = try FileBytes(path: path, maxBytes: maxBytes, hint: hint)
        isGzip = file.isGzip
        inflater = isGzip ? try GzipInflater(source: file, limit: maxBytes) : nil
    }

    /// The content length when known without decompressing (plain files).
    var knownLength: Int? { isGzip ? nil : file.count }

    /// Copies up to `count` content bytes to `dest`; returns fewer only at the end.
    func read(into dest: UnsafeMutablePointer<UInt8>, count: Int) throws -> Int {
        let n: Int
        if let inflater {
            n = try inflater.read(into: dest, count: count)
        } else {
            n = min(count, file.count - offset)
            dest.update(from: file.base + offset, count: n)
        }
        offset += n
        return n
    }

    /// Reads exactly `count` bytes or throws `truncated`, naming `expectedTotal` as the length
    /// the whole content should have.
    func readExactly(into dest: UnsafeMutablePointer<UInt8>, count: Int, expectedTotal: Int) throws {
        let n = try read(into: dest, count: count)
        if n < count {
            throw DataError.truncated(path: path, expected: expectedTotal, got: offset, decompressed: isGzip)
        }
    }

    /// Reads exactly `count` bytes into a new array (for small headers).
    func readBytes(_ count: Int, expectedTotal: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBufferPointer { buf in
            guard let base = buf.baseAddress else { return }
            try readExactly(into: base, count: count, expectedTotal: expectedTotal)
        }
        return bytes
    }

    /// Throws `trailingData` unless the content ends exactly here.
    func expectEnd() throws {
        if let length = knownLength {
            if length > offset {
                throw DataError.trailingData(path: path, expected: offset, got: length, decompressed: false)
            }
            return
        }
        var probe: UInt8 = 0
        let expected = offset
        if try read(into: &probe, count: 1) > 0 {
            throw DataError.trailingData(path: path, expected: expected, got: nil, decompressed: true)
        }
    }

    /// Checks, before reading a payload, that a plain file is at least `total` bytes long, so the
    /// truncation error names the whole shortfall instead of the first short read.
    func requireLength(_ total: Int) throws {
        if let length = knownLength, length < total {
            throw DataError.truncated(path: path, expected: total, got: length, decompressed: false)
        }
    }

    /// Reads everything that is left (gzip: up to the reader's byte cap).
    func readToEnd() throws -> [UInt8] {
        if let length = knownLength {
            let rest = Array(UnsafeBufferPointer(start: file.base + offset, count: length - offset))
            offset = length
            return rest
        }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = try chunk.withUnsafeMutableBufferPointer { try read(into: $0.baseAddress!, count: $0.count) }
            out.append(contentsOf: chunk[0..<n])
            if n < chunk.count { return out }
        }
    }
}
