#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What is wrong with a checkpoint's bytes (a failed system call is a `FileSystemError`); the
/// description says what happened, where (file or tensor), and what to do.
public enum CheckpointError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The input is shorter than the 8-byte header-length prefix.
    case truncated(source: String, size: Int)
    /// The declared header length exceeds the cap or the bytes that follow the prefix.
    case headerTooLarge(source: String, length: UInt64, limit: Int)
    /// The header is not UTF-8, not JSON, or not a JSON object.
    case invalidHeader(source: String, reason: String)
    /// The header names a tensor twice.
    case duplicateName(source: String, name: String)
    /// `__metadata__` is not a map of strings to strings.
    case invalidMetadata(source: String, key: String?, reason: String)
    /// A tensor entry lacks `dtype`/`shape`/`data_offsets` or has them with the wrong types.
    case invalidEntry(source: String, tensor: String, reason: String)
    /// A tensor's `dtype` is not one safetensors defines.
    case unknownDType(source: String, tensor: String, dtype: String)
    /// A tensor's element count times its element size does not fit in an `Int`.
    case sizeOverflow(source: String, tensor: String, shape: [Int], dtype: DType)
    /// A tensor's offsets span a different number of bytes than its shape and dtype need.
    case sizeMismatch(source: String, tensor: String, shape: [Int], dtype: DType, needed: Int, declared: Int)
    /// A tensor's offsets reach past the end of the data section.
    case offsetsOutOfBounds(source: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    /// Two tensors share bytes.
    case overlap(source: String, tensor: String, previous: String, begin: Int, previousEnd: Int)
    /// Bytes `begin..<end` of the data section belong to no tensor (`after` is the tensor before
    /// them, nil at the start).
    case gap(source: String, after: String?, begin: Int, end: Int)
    /// The archive has no tensor of that name.
    case missingTensor(name: String, available: [String])
    /// The tensor exists but holds another dtype than asked for.
    case wrongDType(name: String, expected: DType, actual: DType)
    /// The tensor exists but has another shape than asked for.
    case wrongShape(name: String, expected: [Int], actual: [Int])
    /// The file on disk is larger than `ReadLimits.maxContentSize` allows (plain) or than any
    /// zstd frame of that much content can be (compressed).
    case fileTooLarge(source: String, size: UInt64, limit: UInt64)
    /// The zstd frame declares (`declared` non-nil) or produced more than
    /// `ReadLimits.maxContentSize` bytes of content; decompression stopped there.
    case decompressedTooLarge(source: String, declared: UInt64?, limit: Int)
    /// The zstd frame decompresses to more than its own safetensors header says the file holds
    /// (`declared` bytes: header and data); decoding stopped there.
    case contentBeyondHeader(source: String, declared: Int)
    /// Reading the checkpoint would take `needed` bytes of memory, more than the process can
    /// allocate (`available`: the least of its `ulimit -v`, its cgroup's memory limit and the
    /// system's available memory).
    case notEnoughMemory(source: String, needed: Int, available: Int)
    /// The zstd frame needs a larger window (history buffer) than `ReadLimits.maxWindowLog` allows.
    case zstdWindowTooLarge(source: String, windowSize: UInt64, limit: UInt64)
    /// The zstd frame ends early: the file was cut, e.g. by an interrupted copy.
    case zstdTruncated(source: String, size: Int)
    /// The content's xxHash64 checksum stored in the zstd frame does not match the decoded bytes.
    case zstdChecksumMismatch(source: String)
    /// Bytes follow the single zstd frame (a second frame or garbage, at byte `offset`).
    case zstdTrailingData(source: String, offset: Int, trailing: Int)
    /// The zstd stream is malformed; `reason` is libzstd's (or our) description.
    case zstdCorrupt(source: String, reason: String)
    /// libzstd failed to compress (normally only for lack of memory).
    case compressionFailed(reason: String)
    /// F32 (or F16/BF16/F64) tensors hold NaN or infinite values (names in file order).
    case nonFinite(source: String, tensors: [String])

    /// Advice for a file whose structure is wrong: nothing in the process can repair it.
    private static let reexport =
        "the file is damaged or was not written by a safetensors writer; copy it again or re-export it (e.g. with "
            + "safetensors.torch.save_file)"

    /// What happened, where, and what to do.
    public var description: String {
        switch self {
        case .truncated(let source, let size):
            return
                "\(source): only \(size) bytes, less than the 8-byte header length of a safetensors file; "
                    + "\(Self.reexport)"
        case .headerTooLarge(let source, let length, let limit):
            return
                "\(source): header length \(length) exceeds \(limit) bytes (the 100 MB cap or the bytes actually "
                    + "present); \(Self.reexport)"
        case .invalidHeader(let source, let reason):
            return "\(source): invalid header: \(reason); \(Self.reexport)"
        case .duplicateName(let source, let name):
            return "\(source): tensor '\(name)' appears twice in the header; \(Self.reexport)"
        case .invalidMetadata(let source, let key, let reason):
            let at = key.map { " at key '\($0)'" } ?? ""
            return
                "\(source): invalid __metadata__\(at): \(reason); __metadata__ must map strings to strings, so store "
                    + "numbers and lists as text"
        case .invalidEntry(let source, let tensor, let reason):
            return "\(source): tensor '\(tensor)': \(reason); \(Self.reexport)"
        case .unknownDType(let source, let tensor, let dtype):
            let known = DType.allCases.map(\.rawValue).joined(separator: ", ")
            return
                "\(source): tensor '\(tensor)' has unknown dtype '\(dtype)' (known: \(known)); convert the tensor to "
                    + "F32 before saving"
        case .sizeOverflow(let source, let tensor, let shape, let dtype):
            return
                "\(source): tensor '\(tensor)': shape \(shape) of \(dtype.rawValue) has more bytes than can be "
                    + "addressed; \(Self.reexport)"
        case .sizeMismatch(let source, let tensor, let shape, let dtype, let needed, let declared):
            return
                "\(source): tensor '\(tensor)': shape \(shape) of \(dtype.rawValue) needs \(needed) bytes but "
                    + "data_offsets span \(declared); \(Self.reexport)"
        case .offsetsOutOfBounds(let source, let tensor, let begin, let end, let dataSize):
            return
                "\(source): tensor '\(tensor)': data_offsets [\(begin), \(end)] reach past the \(dataSize)-byte data "
                    + "section (is the file truncated?); \(Self.reexport)"
        case .overlap(let source, let tensor, let previous, let begin, let previousEnd):
            return
                "\(source): tensor '\(tensor)' starts at data offset \(begin), inside tensor '\(previous)' which ends "
                    + "at \(previousEnd); \(Self.reexport)"
        case .gap(let source, let after, let begin, let end):
            let whereText = after.map { "after tensor '\($0)'" } ?? "at the start of the data section"
            return "\(source): data bytes \(begin)..<\(end) \(whereText) belong to no tensor; \(Self.reexport)"
        case .missingTensor(let name, let available):
            let shown = available.prefix(8).joined(separator: ", ") + (available.count > 8 ? ", …" : "")
            return
                "checkpoint has no tensor '\(name)' (it has \(available.count): \(shown)); check that the checkpoint "
                    + "was made for this architecture"
        case .wrongDType(let name, let expected, let actual):
            return
                "tensor '\(name)' is \(actual.rawValue), expected \(expected.rawValue); convert it to "
                    + "\(expected.rawValue) before saving the checkpoint"
        case .wrongShape(let name, let expected, let actual):
            return
                "tensor '\(name)' has shape \(actual), expected \(expected); check that the checkpoint was made for "
                    + "this architecture and configuration"
        case .fileTooLarge(let source, let size, let limit):
            return
                "\(source): the file has \(size) bytes, more than the \(limit)-byte limit for a checkpoint; check "
                    + "that this is the intended file, or raise ReadLimits.maxContentSize if such large checkpoints "
                        + "are expected"
        case .decompressedTooLarge(let source, let declared, let limit):
            let what =
                declared.map {
                    "declares \($0) bytes of content, over the \(limit)-byte limit; refused before decoding"
                }
                ?? "decompresses to more than the \(limit)-byte limit; decoding stopped there"
            return
                "\(source): the zstd frame \(what) (a decompression bomb, or a damaged or unexpected file); raise "
                    + "ReadLimits.maxContentSize only if the file is trusted"
        case .notEnoughMemory(let source, let needed, let available):
            return
                "\(source): reading it takes about \(needed >> 20) MiB of memory but only "
                    + "\(Swift.max(available, 0) >> 20) MiB can be allocated (ulimit -v, the service's MemoryMax=, or "
                        + "the machine's free memory); raise the limit or read it on a larger machine"
        case .contentBeyondHeader(let source, let declared):
            return
                "\(source): the zstd frame decompresses past the \(declared) bytes its own safetensors header "
                    + "declares; decoding stopped there (a decompression bomb, or a damaged file); the file is not a "
                        + "valid checkpoint"
        case .zstdWindowTooLarge(let source, let windowSize, let limit):
            return
                "\(source): the zstd frame needs a \(windowSize)-byte window, over the \(limit)-byte limit; "
                    + "recompress it without --long/--ultra (e.g. zstd -19), or raise ReadLimits.maxWindowLog if the "
                        + "file is trusted"
        case .zstdTruncated(let source, let size):
            return
                "\(source): the zstd frame ends early (only \(size) bytes present; the file was cut, e.g. by an "
                    + "interrupted copy or a full disk); copy the file again"
        case .zstdChecksumMismatch(let source):
            return
                "\(source): the zstd content checksum does not match the decompressed data, so the file is corrupted; "
                    + "copy it again from the source or re-export it"
        case .zstdTrailingData(let source, let offset, let trailing):
            return
                "\(source): \(trailing) bytes follow the zstd frame at byte \(offset) (a second frame or garbage; a "
                    + "checkpoint is exactly one frame); recompress the plain file with zstd, or copy the file again"
        case .zstdCorrupt(let source, let reason):
            return
                "\(source): invalid zstd data: \(reason); the file is damaged or not a zstd-compressed safetensors "
                    + "file; copy it again or re-export it"
        case .compressionFailed(let reason):
            return "zstd compression failed: \(reason); check available memory, or write the checkpoint uncompressed"
        case .nonFinite(let source, let tensors):
            let shown = tensors.prefix(8).map { "'\($0)'" }.joined(separator: ", ") + (tensors.count > 8 ? ", …" : "")
            return
                "\(source): \(tensors.count) tensor(s) hold NaN or infinite values (\(shown)); the training that "
                    + "produced them diverged; use an earlier checkpoint or retrain with a lower learning rate"
        }
    }
}
