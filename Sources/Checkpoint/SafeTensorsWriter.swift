import FileSystem
import Foundation
import TensorCore

extension SafeTensors {
    /// The archive encoded as a safetensors file, byte-identical to what the reference Python
    /// library (`safetensors.torch.save_file`; checked against 0.8.0) writes for the same tensors and a
    /// metadata map of at most one key (it writes several keys in hash order; we sort them).
    ///
    /// Layout: 8-byte little-endian header length N, N bytes of compact JSON padded with spaces
    /// so the data starts 8-aligned, then each tensor's little-endian bytes without holes.
    /// Tensors are ordered by dtype (the reference enum's order, widest types first, so each
    /// tensor starts aligned to its element size) and then by the UTF-8 bytes of the name.
    public func serialized() -> [UInt8] {
        let order = names.sorted { a, b in
            let ra = storedTensor(a).dtype.writeRank
            let rb = storedTensor(b).dtype.writeRank
            if ra != rb { return ra > rb }
            return a.utf8.lexicographicallyPrecedes(b.utf8)
        }

        var header: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func separator() {
            if !first { header.append(UInt8(ascii: ",")) }
            first = false
        }
        if !metadata.isEmpty {
            separator()
            JSONWriter.appendString("__metadata__", to: &header)
            header.append(contentsOf: [UInt8(ascii: ":"), UInt8(ascii: "{")])
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (k, key) in keys.enumerated() {
                if k > 0 { header.append(UInt8(ascii: ",")) }
                JSONWriter.appendString(key, to: &header)
                header.append(UInt8(ascii: ":"))
                JSONWriter.appendString(metadata[key]!, to: &header)
            }
            header.append(UInt8(ascii: "}"))
        }
        var offset = 0
        for name in order {
            let t = storedTensor(name)
            separator()
            JSONWriter.appendString(name, to: &header)
            header.append(contentsOf: Array(#":{"dtype":"#.utf8))
            JSONWriter.appendString(t.dtype.rawValue, to: &header)
            header.append(contentsOf: Array(#","shape":"#.utf8))
            JSONWriter.appendIntArray(t.shape, to: &header)
            header.append(contentsOf: Array(#","data_offsets":"#.utf8))
            JSONWriter.appendIntArray([offset, offset + t.byteCount], to: &header)
            header.append(UInt8(ascii: "}"))
            offset += t.byteCount
        }
        header.append(UInt8(ascii: "}"))
        // Pad so 8 + N is a multiple of 8: the data section then starts 8-aligned in a
        // memory-mapped file, which zero-copy readers rely on.
        header.append(contentsOf: repeatElement(0x20, count: (8 - header.count % 8) % 8))

        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for name in order { appendData(of: storedTensor(name), to: &out) }
        return out
    }

    /// The archive encoded as a file with `compression`: `serialized()` itself, or that wrapped
    /// in one zstd frame (content size and checksum in the frame, so `zstd -d` restores it).
    public func serialized(compression: Compression) throws -> [UInt8] {
        switch compression {
        case .none: return serialized()
        case .zstd(let level): return try Zstd.compress(serialized(), level: level)
        }
    }

    /// Writes `serialized(compression:)` to `path` atomically (see `writeAtomically`). The
    /// caller picks the name; `.safetensors.zst` is the convention for compressed files.
    public func write(toFile path: String, compression: Compression = .none) throws {
        try writeAtomically(serialized(compression: compression), toFile: path)
    }

    /// Writes `serialized(compression:)` to the file `url` atomically (see `writeAtomically`).
    public func write(to url: URL, compression: Compression = .none) throws {
        try write(toFile: url.path, compression: compression)
    }

    /// The tensor called `name`, which the caller knows exists.
    private func storedTensor(_ name: String) -> StoredTensor { self[name]! }

    /// Appends the tensor's elements in little-endian order.
    private func appendData(of tensor: StoredTensor, to out: inout [UInt8]) {
        switch tensor {
        case .float32(let t):
            let n = t.count
            t.withUnsafePointer { p in
                #if _endian(little)
                out.append(contentsOf: UnsafeRawBufferPointer(start: p, count: n * 4))
                #else
                for k in 0..<n { withUnsafeBytes(of: p[k].bitPattern.littleEndian) { out.append(contentsOf: $0) } }
                #endif
            }
        case .int64(_, let values):
            #if _endian(little)
            values.withUnsafeBytes { out.append(contentsOf: $0) }
            #else
            for v in values { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
            #endif
        case .raw(_, _, let bytes):
            out.append(contentsOf: bytes)
        }
    }
}
