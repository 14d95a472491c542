import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The whole content of the file at `path`. A file larger than `limit` bytes is refused
/// (`FileSystemError.tooLarge`) before anything is allocated; with `regularOnly`, a symbolic link
/// is not followed and anything but a regular file is refused unopened for reading (a FIFO would
/// block, a device never end), as files from other users must be.
public func readWholeFile(_ path: String, limit: UInt64 = UInt64.max, regularOnly: Bool = false) throws -> [UInt8] {
    let flags = O_RDONLY | O_CLOEXEC | (regularOnly ? O_NOFOLLOW | O_NONBLOCK : 0)
    let fd = open(path, flags)
    guard fd >= 0 else { throw FileSystemError.system(operation: "open", path: path, errno: errno) }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw FileSystemError.system(operation: "stat", path: path, errno: errno) }
    if regularOnly && (st.st_mode & S_IFMT) != S_IFREG {
        throw FileSystemError.notRegularFile(path: path, kind: FileKind(mode: st.st_mode).phrase)
    }
    guard UInt64(max(0, st.st_size)) <= limit else {
        throw FileSystemError.tooLarge(path: path, size: UInt64(st.st_size), limit: limit)
    }
    let size = Int(st.st_size)
    var total = 0
    var readError: Int32 = 0
    let bytes = [UInt8](unsafeUninitializedCapacity: size) { buf, initialized in
        while total < size {
            let r = read(fd, buf.baseAddress! + total, Swift.min(size - total, 1 << 30))
            if r < 0 {
                if errno == EINTR { continue }
                readError = errno
                break
            }
            if r == 0 { break }  // the file shrank while we read; the parser will see the truncation
            total += r
        }
        initialized = total
    }
    guard readError == 0 else { throw FileSystemError.system(operation: "read", path: path, errno: readError) }
    return bytes
}
