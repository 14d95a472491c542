import Foundation

/// Size caps that protect readers from corrupt headers and decompression bombs.
public enum DataLimits {
    /// The most bytes any one file, or its decompressed content, may hold (1 GiB). The largest
    /// supported file, CIFAR-10's data_batch_N.bin, is about 30 MB; Fashion-MNIST's train images
    /// are 47 MB decompressed.
    public static let maxBytes = 1 << 30
}

/// The whole content of one file in an owned, stably addressed buffer.
///
/// A stable address lets zlib read the compressed bytes in place and lets parsers convert
/// bytes to floats without intermediate arrays.
final class FileBytes {
    /// The first byte (valid even when `count` is 0).
    let base: UnsafeMutablePointer<UInt8>
    /// Number of bytes in the file.
    let count: Int
    /// The path the bytes came from, for error messages.
    let path: String

    /// Reads `path` completely, refusing files larger than `maxBytes`.
    init(path: String, maxBytes: Int = DataLimits.maxBytes, hint: String = "") throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let err = errno
            if err == ENOENT || err == ENOTDIR {
                throw DataError.fileNotFound(path: path, hint: hint)
            }
            throw DataError.unreadable(path: path, reason: String(cString: strerror(err)))
        }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 {
            throw DataError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        if (st.st_mode & S_IFMT) != S_IFREG {
            throw DataError.unreadable(path: path, reason: "not a regular file")
        }
        let size = Int(st.st_size)
        if size > maxBytes {
            throw DataError.tooLarge(path: path, what: "file size \(size)", limit: maxBytes)
        }
        count = size
        base = UnsafeMutablePointer<UInt8>.allocate(capacity: max(size, 1))
        var done = 0
        while done < size {
            let n = read(fd, base + done, size - done)
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                base.deallocate()
                throw DataError.unreadable(path: path, reason: reason)
            }
            if n == 0 { break }  // the file shrank while we read it
            done += n
        }
        if done != size {
            base.deallocate()
            throw DataError.truncated(path: path, expected: size, got: done, decompressed: false)
        }
    }

    deinit { base.deallocate() }

    /// True when the content starts with the gzip magic bytes 1f 8b.
    var isGzip: Bool { count >= 2 && base[0] == 0x1F && base[1] == 0x8B }
}
