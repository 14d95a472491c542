import FileSystem
import Foundation

/// The attacked batches of one evaluation, kept on disk as they finish, so that an evaluation
/// stopped part-way (a session's end, SIGKILL, a daemon restart) resumes from the first batch it
/// had not finished instead of from the start.
///
/// Every batch draws from a random stream of its own (`RobustnessEvaluator`), so a batch read
/// back is the batch that would have been computed. The file is plain text: a header line with
/// the evaluation's identity (model, data, settings, threads), then one line per batch. A file
/// for another identity is started over; a line cut short by a crash is dropped. Lines are
/// appended and flushed to disk one batch at a time.
public final class EvaluationJournal {
    /// One attacked batch: whether each image was fooled and how far it left the threat model.
    public struct Batch: Equatable {
        /// Per image of the batch, in order.
        public var fooled: [Bool]
        /// Per image, the adversarial image's distance outside the threat model (0 inside).
        public var excess: [Double]
        /// Wall time the batch took when it was computed.
        public var seconds: Double

        /// A batch's results.
        public init(fooled: [Bool], excess: [Double], seconds: Double) {
            self.fooled = fooled
            self.excess = excess
            self.seconds = seconds
        }
    }

    /// Where the journal lives.
    public let path: String
    /// Batches read back from an earlier run of the same evaluation.
    public let resumable: Int
    /// True when the file held another evaluation's batches, which were discarded.
    public let discardedOther: Bool
    private var batches: [String: (digest: UInt64, batch: Batch)]
    private let descriptor: Int32

    private static let magic = "rrmd-evaluation-journal 1"
    /// Far more than any evaluation writes (a 10,000-image run writes well under 1 MiB).
    private static let sizeLimit: UInt64 = 256 << 20

    /// Opens the journal at `path` for the evaluation described by `identity`, keeping what an
    /// earlier run of that evaluation recorded; the file is created if missing.
    public init(path: String, identity: String) throws {
        self.path = path
        let header = Self.magic + "\t" + identity.replacingOccurrences(of: "\n", with: " ")
        var kept: [String: (digest: UInt64, batch: Batch)] = [:]
        var keptLines: [Substring] = []
        var other = false
        if FileManager.default.fileExists(atPath: path) {
            let text = String(
                decoding: try readWholeFile(path, limit: Self.sizeLimit, regularOnly: true), as: UTF8.self)
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            // Only newline-terminated lines were written whole: the piece after the last newline
            // (empty, or a line cut short) is dropped.
            lines.removeLast()
            if lines.first.map(String.init) == header {
                for line in lines.dropFirst() {
                    guard let (key, digest, batch) = Self.parse(line) else { continue }
                    kept[key] = (digest, batch)
                    keptLines.append(line)
                }
            } else {
                other = !lines.isEmpty
            }
        }
        // Rewritten whole (temp, fsync, rename) so that appends start on a line boundary.
        let content = ([Substring(header)] + keptLines).joined(separator: "\n") + "\n"
        try writeAtomically(Array(content.utf8), toFile: path)
        let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        if fd < 0 { throw FileSystemError.system(operation: "open", path: path, errno: errno) }
        descriptor = fd
        batches = kept
        resumable = kept.count
        discardedOther = other
    }

    deinit { close(descriptor) }

    /// The recorded results of batch `index` of `phase`, if it was attacked with these `images`.
    public func batch(phase: String, index: Int, images: [Int]) -> Batch? {
        guard let entry = batches[Self.key(phase, index)], entry.digest == Self.digest(images),
            entry.batch.fooled.count == images.count
        else { return nil }
        return entry.batch
    }

    /// Appends batch `index` of `phase` and flushes it to disk.
    public func record(phase: String, index: Int, images: [Int], _ batch: Batch) throws {
        precondition(
            batch.fooled.count == images.count && batch.excess.count == images.count,
            "EvaluationJournal: a batch needs one result per image")
        let digest = Self.digest(images)
        let fields = [
            phase, String(index), String(digest, radix: 16), "\(batch.seconds)",
            String(batch.fooled.map { $0 ? "1" : "0" }), batch.excess.map { "\($0)" }.joined(separator: ","),
        ]
        let bytes = Array((fields.joined(separator: "\t") + "\n").utf8)
        let end = lseek(descriptor, 0, SEEK_END)
        do {
            try bytes.withUnsafeBytes { try writeFully(descriptor, $0, path: path) }
        } catch {
            // A full disk may have taken part of the line: cut it off, so that the next append
            // (after space is freed) starts on a line boundary.
            if end >= 0 { _ = ftruncate(descriptor, end) }
            throw error
        }
        guard fdatasync(descriptor) == 0 else {
            throw FileSystemError.system(operation: "fdatasync", path: path, errno: errno)
        }
        batches[Self.key(phase, index)] = (digest, batch)
    }

    /// Deletes the file: the evaluation it served is complete and reported.
    public func remove() {
        unlink(path)
    }

    private static func key(_ phase: String, _ index: Int) -> String { phase + "\t" + String(index) }

    /// FNV-1a over the image indices: a batch is reused only for the same images.
    static func digest(_ images: [Int]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in images {
            var v = UInt64(bitPattern: Int64(i))
            for _ in 0..<8 {
                h = (h ^ (v & 0xff)) &* 0x100_0000_01b3
                v >>= 8
            }
        }
        return h
    }

    private static func parse(_ line: Substring) -> (String, UInt64, Batch)? {
        let f = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard f.count == 6, let index = Int(f[1]), let digest = UInt64(f[2], radix: 16), let seconds = Double(f[3]),
            f[4].allSatisfy({ $0 == "0" || $0 == "1" })
        else { return nil }
        let fooled = f[4].map { $0 == "1" }
        let excess = f[5].isEmpty ? [] : f[5].split(separator: ",").compactMap { Double($0) }
        guard excess.count == fooled.count else { return nil }
        return (key(String(f[0]), index), digest, Batch(fooled: fooled, excess: excess, seconds: seconds))
    }
}
