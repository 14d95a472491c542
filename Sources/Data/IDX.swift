import Kernels
import TensorCore

/// Reader for IDX files (the MNIST / Fashion-MNIST format), gzipped or plain.
///
/// Layout: bytes 0-1 are zero, byte 2 is the element type (0x08 = unsigned byte, the only one
/// supported), byte 3 the number of dimensions; then each dimension as a big-endian UInt32;
/// then the elements row-major. Every size derived from the header is overflow-checked and
/// capped, and the content must end exactly where the header says.
public enum IDX {
    /// The element type code for unsigned bytes.
    public static let unsignedByte: UInt8 = 0x08

    /// Reads an images file (dimensions N x H x W) as `[N, 1, H, W]`, each byte divided by
    /// `maxValue` (255 for MNIST, 16 for UCI digits); a byte above `maxValue` is an error.
    /// `limit` keeps only the first images (the rest of a gzipped file is then not inflated).
    public static func readImages(
        path: String, maxValue: Int = 255, limit: Int? = nil, hint: String = ""
    ) throws -> Tensor {
        precondition(maxValue > 0 && maxValue <= 255, "IDX.readImages: maxValue \(maxValue) not in 1...255")
        let reader = try ContentReader(path: path, hint: hint)
        let header = try readHeader(reader, rank: 3, expected: "[N, H, W] (an idx3 images file)")
        let (n, h, w) = (header.dims[0], header.dims[1], header.dims[2])
        if h == 0 || w == 0 {
            throw DataError.wrongShape(path: path, found: header.dims, expected: "non-zero height and width")
        }
        let keep = min(n, max(0, limit ?? n))
        let pixels = h * w  // cannot overflow: header.payload already checked n*h*w
        // The count comes from the header: a gzipped file can declare far more than it holds.
        try MemoryBudget.check(
            keep * pixels * MemoryLayout<Float>.size,
            for: "reading \(path) (\(keep) images of \(h)x\(w), as the header declares)",
            whatToDo:
                "check the file (its header may be damaged), read fewer images (limit), or run where more memory is "
                    + "available"
        )
        var images = Tensor(uninitializedShape: [keep, 1, h, w])  // [N, 1, H, W]
        let total = keep * pixels
        let table = scaleTable(maxValue)
        try images.withUnsafeMutablePointer { dst in
            try forEachChunk(reader, count: total, expectedTotal: header.total) { bytes, start in
                for i in 0..<bytes.count {
                    let v = bytes[i]
                    if Int(v) > maxValue {
                        throw DataError.pixelOutOfRange(
                            path: path, offset: header.size + start + i, value: Int(v), max: maxValue)
                    }
                    dst[start + i] = table[Int(v)]
                }
            }
        }
        if keep == n { try reader.expectEnd() }
        return images
    }

    /// Reads a labels file (one dimension N); each label must be below `numClasses`.
    public static func readLabels(
        path: String, numClasses: Int, limit: Int? = nil, hint: String = ""
    ) throws -> [Int32] {
        precondition(numClasses > 0 && numClasses <= 256, "IDX.readLabels: numClasses \(numClasses) not in 1...256")
        let reader = try ContentReader(path: path, hint: hint)
        let header = try readHeader(reader, rank: 1, expected: "[N] (an idx1 labels file)")
        let n = header.dims[0]
        let keep = min(n, max(0, limit ?? n))
        var labels = [Int32](repeating: 0, count: keep)
        try labels.withUnsafeMutableBufferPointer { dst in
            try forEachChunk(reader, count: keep, expectedTotal: header.total) { bytes, start in
                for i in 0..<bytes.count {
                    let v = Int(bytes[i])
                    if v >= numClasses {
                        throw DataError.labelOutOfRange(
                            path: path, index: start + i, offset: header.size + start + i,
                            label: v, numClasses: numClasses)
                    }
                    dst[start + i] = Int32(v)
                }
            }
        }
        if keep == n { try reader.expectEnd() }
        return labels
    }

    /// `v / maxValue` for every byte value: division (not multiplication by a rounded
    /// reciprocal) makes `maxValue` map to exactly 1, and the table makes it cheap.
    static func scaleTable(_ maxValue: Int) -> [Float] {
        (0..<256).map { Float($0) / Float(maxValue) }
    }

    /// A parsed header: dimensions, header size and the total content length it implies.
    struct Header {
        var dims: [Int]
        var size: Int
        var total: Int
    }

    /// Reads and validates magic, element type, rank and dimensions.
    static func readHeader(_ reader: ContentReader, rank: Int, expected: String) throws -> Header {
        let headerSize = 4 + 4 * rank
        let magic = try reader.readBytes(4, expectedTotal: headerSize)
        if magic[0] != 0 || magic[1] != 0 {
            throw DataError.badMagic(
                path: reader.path, offset: 0, found: magic,
                expected: "00 00 08 0\(rank) (IDX, unsigned byte, \(rank)-D)")
        }
        if magic[2] != unsignedByte {
            throw DataError.wrongDType(path: reader.path, found: magic[2], expected: unsignedByte)
        }
        func readDims(_ count: Int) throws -> [Int] {
            let raw = try reader.readBytes(4 * count, expectedTotal: 4 + 4 * count)
            return (0..<count).map { d in
                raw[(4 * d)..<(4 * d + 4)].reduce(0) { $0 << 8 | Int($1) }  // big-endian UInt32
            }
        }
        let declared = Int(magic[3])
        if declared != rank {
            // Show the declared dimensions when they are few enough to be worth printing.
            let shown = declared <= 4 ? ((try? readDims(declared)) ?? []) : []
            throw DataError.wrongShape(
                path: reader.path, found: shown,
                expected: "\(expected); the header declares \(declared) dimensions, not \(rank)")
        }
        let dims = try readDims(rank)
        var payload = 1
        for d in dims {
            let (p, overflow) = payload.multipliedReportingOverflow(by: d)
            if overflow || p > DataLimits.maxBytes {
                throw DataError.tooLarge(
                    path: reader.path, what: "content of dimensions \(dims)", limit: DataLimits.maxBytes)
            }
            payload = p
        }
        let total = headerSize + payload
        try reader.requireLength(total)
        return Header(dims: dims, size: headerSize, total: total)
    }

    /// Streams `count` payload bytes through a 64 KiB buffer, calling `body(bytes, firstIndex)`;
    /// chunking keeps memory flat whether the file is gzipped or not.
    static func forEachChunk(
        _ reader: ContentReader, count: Int, expectedTotal: Int,
        _ body: (UnsafeBufferPointer<UInt8>, Int) throws -> Void
    ) throws {
        let chunkSize = 1 << 16
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: chunkSize)
        defer { buffer.deallocate() }
        var done = 0
        while done < count {
            let n = min(chunkSize, count - done)
            try reader.readExactly(into: buffer, count: n, expectedTotal: expectedTotal)
            try body(UnsafeBufferPointer(start: buffer, count: n), done)
            done += n
        }
    }
}
