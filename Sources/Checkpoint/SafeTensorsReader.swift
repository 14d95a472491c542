import FileSystem
import Foundation
import Kernels
import TensorCore

extension SafeTensors {
    /// Largest header accepted, as in the reference library: a real header needs ~100 bytes per
    /// tensor, so anything bigger is damage or an attempt to make us allocate.
    public static let maxHeaderLength = 100_000_000

    /// Parses a whole checkpoint held in memory, plain or zstd-compressed (recognised by the
    /// zstd magic bytes, not by a name); `source` names it in error messages.
    ///
    /// Nothing in `bytes` is trusted. A zstd frame must be exactly one frame with a window and
    /// content size within `limits`, must not be cut short, and must match its checksum if it
    /// carries one; it is decoded in bounded steps so a decompression bomb is stopped just past
    /// `limits.maxContentSize`. The safetensors content must then be well formed: the header
    /// length is capped, the header must be a UTF-8 JSON object of well-typed entries with known
    /// dtypes, every tensor's byte size must equal element count × dtype size (overflow-checked),
    /// and the tensors must tile the data section exactly (no overlap, no hole, no trailing
    /// bytes). Violations throw `CheckpointError`. F32 and I64 tensors are decoded; other dtypes
    /// are kept as `.raw` bytes.
    public init(bytes: [UInt8], source: String = "<memory>", limits: ReadLimits = .standard) throws {
        if Zstd.isFrame(bytes) {
            // The header, in the first decoded bytes, is checked as soon as it is complete, and
            // the size it declares caps the rest (a bomb is refused in bounded memory).
            let plain = try Zstd.decompress(bytes, limits: limits, source: source) { prefix in
                guard let size = try Self.declaredSize(prefix: prefix, source: "\(source) (decompressed)") else {
                    return nil
                }
                // The content and the tensors decoded from it are both held at once.
                try Self.checkMemory(needed: 2 * size, source: source)
                return size
            }
            // Offsets in later messages refer to the decompressed bytes, which the name says.
            try self.init(plain: plain, source: "\(source) (decompressed)")
        } else {
            guard bytes.count <= limits.maxContentSize else {
                throw CheckpointError.fileTooLarge(
                    source: source, size: UInt64(bytes.count), limit: UInt64(limits.maxContentSize))
            }
            try self.init(plain: bytes, source: source)
        }
    }

    /// The whole size (8 + header + data) a safetensors file declares in its first bytes
    /// `prefix`; nil while `prefix` does not yet hold the whole header. Throws the error the full
    /// parse would for an invalid header, so a stream can be refused as soon as its header is.
    static func declaredSize(prefix: [UInt8], source: String) throws -> Int? {
        guard prefix.count >= 8 else { return nil }
        var length: UInt64 = 0
        for k in 0..<8 { length |= UInt64(prefix[k]) << UInt64(8 * k) }
        guard length <= UInt64(Self.maxHeaderLength) else {
            throw CheckpointError.headerTooLarge(source: source, length: length, limit: Self.maxHeaderLength)
        }
        let headerEnd = 8 + Int(length)
        guard prefix.count >= headerEnd else { return nil }
        let layout = try HeaderLayout(header: Array(prefix[8..<headerEnd]), dataSize: nil, source: source)
        return headerEnd + layout.dataSize
    }

    /// Throws `notEnoughMemory` when `needed` more bytes cannot be allocated (a failed Swift
    /// allocation would stop the process instead): `MemoryBudget.check`, in the checkpoint's terms.
    static func checkMemory(needed: Int, source: String) throws {
        do {
            try MemoryBudget.check(needed, for: "reading \(source)", whatToDo: "")
        } catch let short as NotEnoughMemory {
            throw CheckpointError.notEnoughMemory(source: source, needed: short.needed, available: short.available)
        }
    }

    /// Parses uncompressed safetensors bytes (see `init(bytes:source:limits:)`).
    private init(plain bytes: [UInt8], source: String) throws {
        guard bytes.count >= 8 else { throw CheckpointError.truncated(source: source, size: bytes.count) }
        var declared: UInt64 = 0
        for k in 0..<8 { declared |= UInt64(bytes[k]) << UInt64(8 * k) }
        let limit = Swift.min(Self.maxHeaderLength, bytes.count - 8)
        guard declared <= UInt64(limit) else {
            throw CheckpointError.headerTooLarge(source: source, length: declared, limit: limit)
        }
        let headerEnd = 8 + Int(declared)
        let header = Array(bytes[8..<headerEnd])
        let layout = try HeaderLayout(header: header, dataSize: bytes.count - headerEnd, source: source)
        // The decoded tensors take as much again as their bytes.
        try Self.checkMemory(needed: layout.dataSize, source: source)

        self.init(metadata: layout.metadata)
        bytes.withUnsafeBytes { file in
            let data = UnsafeRawBufferPointer(rebasing: file[headerEnd...])
            for entry in layout.entries {
                self[entry.name] = Self.decode(entry, from: data)
            }
        }
    }

    /// Parses a checkpoint, plain or zstd-compressed, held in a `Data`.
    public init(data: Data, source: String = "<memory>", limits: ReadLimits = .standard) throws {
        try self.init(bytes: [UInt8](data), source: source, limits: limits)
    }

    /// Reads and parses the checkpoint at `path`, plain or zstd-compressed whatever its name.
    /// A file larger than a frame of `limits.maxContentSize` content could be is not read.
    public init(contentsOfFile path: String, limits: ReadLimits = .standard) throws {
        let bytes: [UInt8]
        do {
            bytes = try readWholeFile(path, limit: Zstd.maxFrameSize(contentSize: limits.maxContentSize))
        } catch let FileSystemError.tooLarge(_, size, limit) {
            throw CheckpointError.fileTooLarge(source: path, size: size, limit: limit)
        }
        try self.init(bytes: bytes, source: path, limits: limits)
    }

    /// Reads and parses the checkpoint at `url`, plain or zstd-compressed.
    public init(contentsOf url: URL, limits: ReadLimits = .standard) throws {
        try self.init(contentsOfFile: url.path, limits: limits)
    }

    /// Builds the stored value of a validated entry from the data section.
    private static func decode(_ e: HeaderLayout.Entry, from data: UnsafeRawBufferPointer) -> StoredTensor {
        let src = UnsafeRawBufferPointer(rebasing: data[e.begin..<e.end])
        switch e.dtype {
        case .f32:
            var t = Tensor(uninitializedShape: e.shape)
            let n = t.count
            t.withUnsafeMutablePointer { dst in
                #if _endian(little)
                if n > 0 { UnsafeMutableRawPointer(dst).copyMemory(from: src.baseAddress!, byteCount: n * 4) }
                #else
                for k in 0..<n {
                    dst[k] = Float(
                        bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self)))
                }
                #endif
            }
            return .float32(t)
        case .i64:
            let n = src.count / 8
            let values = [Int64](unsafeUninitializedCapacity: n) { buf, initialized in
                for k in 0..<n {
                    buf[k] = Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * k, as: Int64.self))
                }
                initialized = n
            }
            return .int64(shape: e.shape, values: values)
        default:
            return .raw(dtype: e.dtype, shape: e.shape, bytes: Array(src))
        }
    }
}

/// The validated content of a header: metadata and tensor entries sorted by data offset.
struct HeaderLayout {
    /// One tensor's header entry after validation.
    struct Entry {
        let name: String
        let dtype: DType
        let shape: [Int]
        let begin: Int
        let end: Int
    }

    let metadata: [String: String]
    /// In data order, which for files we wrote is also the reference library's write order.
    let entries: [Entry]
    /// Bytes of the data section the entries tile.
    let dataSize: Int

    /// Validates `header` (the N header bytes) against a data section of `dataSize` bytes, or,
    /// with `dataSize` nil (only the header has been read), against the size the entries tile.
    init(header: [UInt8], dataSize: Int?, source: String) throws {
        guard String(validating: header, as: UTF8.self) != nil else {
            throw CheckpointError.invalidHeader(source: source, reason: "the header is not valid UTF-8")
        }
        let root: JSONValue
        do {
            root = try JSONParser.parse(header)
        } catch let e as JSONParseError {
            throw CheckpointError.invalidHeader(
                source: source, reason: "malformed JSON at header byte \(e.offset): \(e.message)")
        }
        guard case .object(let members) = root else {
            throw CheckpointError.invalidHeader(
                source: source, reason: "the header is \(root.kind), expected a JSON object")
        }

        var metadata: [String: String]?
        var entries: [Entry] = []
        var seen = Set<String>()
        for (name, value) in members {
            guard seen.insert(name).inserted else {
                if name == "__metadata__" {
                    throw CheckpointError.invalidMetadata(
                        source: source, key: nil, reason: "__metadata__ appears twice")
                }
                throw CheckpointError.duplicateName(source: source, name: name)
            }
            if name == "__metadata__" {
                metadata = try Self.metadata(value, source: source)
            } else {
                entries.append(try Self.entry(name, value, dataSize: dataSize, source: source))
            }
        }

        // Sorting by offsets reduces the tiling check to comparing neighbours; the index breaks
        // ties between empty tensors so the order is deterministic.
        let sorted = entries.enumerated().sorted { a, b in
            (a.element.begin, a.element.end, a.offset) < (b.element.begin, b.element.end, b.offset)
        }.map(\.element)
        var cursor = 0
        var previous: String?
        for e in sorted {
            if e.begin < cursor {
                throw CheckpointError.overlap(
                    source: source, tensor: e.name, previous: previous ?? "", begin: e.begin, previousEnd: cursor)
            }
            if e.begin > cursor {
                throw CheckpointError.gap(source: source, after: previous, begin: cursor, end: e.begin)
            }
            cursor = e.end
            previous = e.name
        }
        if let dataSize, cursor != dataSize {
            throw CheckpointError.gap(source: source, after: previous, begin: cursor, end: dataSize)
        }

        self.metadata = metadata ?? [:]
        self.entries = sorted
        self.dataSize = cursor
    }

    /// Validates the `__metadata__` value: an object whose values are all strings.
    private static func metadata(_ value: JSONValue, source: String) throws -> [String: String] {
        guard case .object(let members) = value else {
            throw CheckpointError.invalidMetadata(
                source: source, key: nil, reason: "it is \(value.kind), expected an object")
        }
        var map: [String: String] = [:]
        for (key, v) in members {
            guard case .string(let s) = v else {
                throw CheckpointError.invalidMetadata(
                    source: source, key: key, reason: "the value is \(v.kind), expected a string")
            }
            guard map.updateValue(s, forKey: key) == nil else {
                throw CheckpointError.invalidMetadata(source: source, key: key, reason: "the key appears twice")
            }
        }
        return map
    }

    /// Validates one tensor entry: field types, dtype, size arithmetic and bounds.
    private static func entry(_ name: String, _ value: JSONValue, dataSize: Int?, source: String) throws -> Entry {
        func bad(_ reason: String) -> CheckpointError { .invalidEntry(source: source, tensor: name, reason: reason) }
        guard case .object(let members) = value else {
            throw bad("the entry is \(value.kind), expected an object with dtype, shape and data_offsets")
        }
        var fields: [String: JSONValue] = [:]
        for (key, v) in members {
            // Unknown fields are ignored, as the reference reader does; repeated ones are not,
            // since which one wins would be reader-dependent.
            guard fields.updateValue(v, forKey: key) == nil else { throw bad("field '\(key)' appears twice") }
        }

        guard let dtypeValue = fields["dtype"] else { throw bad("missing field 'dtype'") }
        guard case .string(let dtypeName) = dtypeValue else {
            throw bad("'dtype' is \(dtypeValue.kind), expected a string")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw CheckpointError.unknownDType(source: source, tensor: name, dtype: dtypeName)
        }

        guard let shapeValue = fields["shape"] else { throw bad("missing field 'shape'") }
        guard case .array(let dims) = shapeValue else { throw bad("'shape' is \(shapeValue.kind), expected an array") }
        var shape: [Int] = []
        for d in dims {
            guard let v = d.nonNegativeInt else {
                throw bad("'shape' holds \(describe(d)), expected non-negative integers")
            }
            shape.append(v)
        }

        guard let offsetsValue = fields["data_offsets"] else { throw bad("missing field 'data_offsets'") }
        guard case .array(let offsets) = offsetsValue, offsets.count == 2,
            let begin = offsets[0].nonNegativeInt, let end = offsets[1].nonNegativeInt
        else {
            throw bad("'data_offsets' is \(describe(offsetsValue)), expected [begin, end] with non-negative integers")
        }
        guard begin <= end else { throw bad("'data_offsets' [\(begin), \(end)] ends before it begins") }

        var elements = 1
        for d in shape {
            let (p, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw CheckpointError.sizeOverflow(source: source, tensor: name, shape: shape, dtype: dtype)
            }
            elements = p
        }
        let (needed, overflow) = elements.multipliedReportingOverflow(by: dtype.size)
        guard !overflow else {
            throw CheckpointError.sizeOverflow(source: source, tensor: name, shape: shape, dtype: dtype)
        }
        guard end - begin == needed else {
            throw CheckpointError.sizeMismatch(
                source: source, tensor: name, shape: shape, dtype: dtype, needed: needed, declared: end - begin)
        }
        if let dataSize, end > dataSize {
            throw CheckpointError.offsetsOutOfBounds(
                source: source, tensor: name, begin: begin, end: end, dataSize: dataSize)
        }
        return Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// A short rendering of a JSON value for messages (numbers and strings shown, capped).
    private static func describe(_ v: JSONValue) -> String {
        switch v {
        case .number(let text): return text.count > 24 ? "the number \(text.prefix(24))…" : "the number \(text)"
        case .string(let s): return s.count > 24 ? "the string \"\(s.prefix(24))…\"" : "the string \"\(s)\""
        case .array(let items): return "an array of \(items.count) items"
        default: return v.kind
        }
    }
}
