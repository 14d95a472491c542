/// A problem with a dataset file or directory: says what happened, where, and what to do.
///
/// Readers throw these for anything that depends on file contents or the environment, so a bad
/// download or a wrong `--data-dir` never crashes the process (design.md §4.6). Byte offsets
/// count bytes of the file's *content*, i.e. after gunzip when the file is gzipped.
public enum DataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A required file does not exist; `hint` says how to provide it.
    case fileNotFound(path: String, hint: String)
    /// No directory holding the dataset's files was found among `searched`.
    case datasetNotFound(name: String, searched: [String], hint: String)
    /// The dataset name is not one rrmd knows.
    case unknownDataset(name: String, known: [String])
    /// The file exists but could not be opened or read (permissions, a directory, I/O error).
    case unreadable(path: String, reason: String)
    /// The content ends before `expected` bytes; only `got` bytes are there.
    case truncated(path: String, expected: Int, got: Int, decompressed: Bool)
    /// The content continues past the `expected` bytes its header describes; `got` is the actual
    /// length when known (plain files), nil when reading stopped at the first extra byte (gzip).
    case trailingData(path: String, expected: Int, got: Int?, decompressed: Bool)
    /// The bytes at `offset` are not the format's magic number.
    case badMagic(path: String, offset: Int, found: [UInt8], expected: String)
    /// The IDX element type is not the one required (0x08, unsigned byte).
    case wrongDType(path: String, found: UInt8, expected: UInt8)
    /// The header's dimensions are not what this file should hold.
    case wrongShape(path: String, found: [Int], expected: String)
    /// An images file and its labels file disagree on the number of samples.
    case countMismatch(imagesPath: String, images: Int, labelsPath: String, labels: Int)
    /// Sample `index` has label `label`, outside `0..<numClasses`; `offset` is its byte offset.
    case labelOutOfRange(path: String, index: Int, offset: Int, label: Int, numClasses: Int)
    /// A pixel byte exceeds the maximum the dataset declares (e.g. 16 for UCI digits).
    case pixelOutOfRange(path: String, offset: Int, value: Int, max: Int)
    /// The file length is not a whole number of fixed-size records.
    case badRecordSize(path: String, size: Int, recordSize: Int)
    /// zlib rejected the gzip stream at compressed byte `offset`.
    case gzipCorrupt(path: String, offset: Int, reason: String)
    /// `what` would exceed `limit` bytes (a size field overflowed, or a decompression bomb).
    case tooLarge(path: String, what: String, limit: Int)
    /// An image of an image-folder dataset cannot be decoded.
    case badImage(path: String, reason: String)
    /// An image-folder dataset's directory has no usable layout.
    case badFolder(path: String, reason: String)

    /// One readable sentence or two: what happened, where, what to do.
    public var description: String {
        switch self {
        case .fileNotFound(let path, let hint):
            return "dataset file not found: \(path). \(hint)"
        case .datasetNotFound(let name, let searched, let hint):
            let list = searched.isEmpty ? "no directories given" : searched.joined(separator: ", ")
            return "dataset '\(name)' not found (searched: \(list)). \(hint)"
        case .unknownDataset(let name, let known):
            return "unknown dataset '\(name)'; known datasets: \(known.joined(separator: ", "))."
        case .unreadable(let path, let reason):
            return "cannot read \(path): \(reason). Check the path and its permissions."
        case .truncated(let path, let expected, let got, let decompressed):
            return "\(path) is truncated: expected \(expected) \(kind(decompressed)) bytes, got \(got). "
                + "The file is incomplete; download or copy it again."
        case .trailingData(let path, let expected, let got, let decompressed):
            let actual = got.map { "it has \($0)" } ?? "it has more"
            return "\(path) is longer than its header says: expected \(expected) \(kind(decompressed)) "
                + "bytes, \(actual). It may be corrupt or not the file its name suggests; replace it."
        case .badMagic(let path, let offset, let found, let expected):
            return "\(path): bad magic number at byte \(offset): found \(hex(found)), expected \(expected). "
                + "This is not a file of the expected format (wrong file, or an HTML error page?)."
        case .wrongDType(let path, let found, let expected):
            return "\(path): IDX element type 0x\(hex2(found)) at byte 2, expected 0x\(hex2(expected)) "
                + "(unsigned byte). Only unsigned-byte IDX files are supported."
        case .wrongShape(let path, let found, let expected):
            return "\(path): header dimensions \(found), expected \(expected). "
                + "Check that images and labels files are not swapped and belong to this dataset."
        case .countMismatch(let imagesPath, let images, let labelsPath, let labels):
            return "\(imagesPath) holds \(images) images but \(labelsPath) holds \(labels) labels. "
                + "The two files do not belong together; use the matching pair."
        case .labelOutOfRange(let path, let index, let offset, let label, let numClasses):
            return "\(path): label \(label) of sample \(index) (byte \(offset)) is outside 0..<\(numClasses). "
                + "The file is corrupt or belongs to another dataset."
        case .pixelOutOfRange(let path, let offset, let value, let max):
            return "\(path): pixel value \(value) at byte \(offset) exceeds this dataset's maximum \(max). "
                + "The file belongs to another dataset or the pixel scale is wrong."
        case .badRecordSize(let path, let size, let recordSize):
            return "\(path): size \(size) bytes is not a multiple of the \(recordSize)-byte record "
                + "(\(size / recordSize) whole records + \(size % recordSize) bytes). "
                + "The file is truncated or not in this format (CIFAR-10 needs the \"binary version\")."
        case .gzipCorrupt(let path, let offset, let reason):
            return "\(path): corrupt gzip data at compressed byte \(offset): \(reason). "
                + "Download or copy the file again."
        case .tooLarge(let path, let what, let limit):
            return "\(path): \(what) exceeds the limit of \(limit) bytes; refusing to read it "
                + "(corrupt header or decompression bomb)."
        case .badImage(let path, let reason):
            return "\(path): cannot decode this image (\(reason)). Replace or remove the file; every file in a "
                + "class folder must be a JPEG or PNG image."
        case .badFolder(let path, let reason):
            return "\(path): \(reason). An image-folder dataset is ROOT/train/<class>/*.{jpg,jpeg,png} and "
                + "ROOT/test/<class>/..., or ROOT/<class>/... split by position."
        }
    }
}

private func kind(_ decompressed: Bool) -> String { decompressed ? "decompressed" : "file" }

private func hex2(_ b: UInt8) -> String {
    let s = String(b, radix: 16)
    return s.count == 1 ? "0" + s : s
}

private func hex(_ bytes: [UInt8]) -> String {
    bytes.isEmpty ? "nothing (empty file)" : bytes.map(hex2).joined(separator: " ")
}
