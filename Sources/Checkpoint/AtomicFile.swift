import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Replaces the file at `path` with `bytes` so that readers and crashes see either the old or
/// the new content, never a partial file.
///
/// Writes a temporary file `.<name>.<random>.tmp` in the same directory (same filesystem, so the
/// rename is atomic; the dot and `.tmp` make the spool watcher ignore it), fsyncs it, renames it
/// over `path`, then fsyncs the directory so the rename itself survives a power loss. On failure
/// the temporary file is removed and a `CheckpointError.io` carries the errno.
public func writeAtomically(_ bytes: [UInt8], toFile path: String) throws {
    let slash = path.lastIndex(of: "/")
    let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
    let base = slash.map { String(path[path.index(after: $0)...]) } ?? path

    var fd: Int32 = -1
    var temp = ""
    for _ in 0..<16 {
        temp = "\(directory)/.\(base).\(String(UInt64.random(in: 0...UInt64.max), radix: 16)).tmp"
        fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd >= 0 || errno != EEXIST { break }
    }
    guard fd >= 0 else { throw CheckpointError.io(operation: "create temporary file", path: temp, errno: errno) }

    var closed = false
    do {
        try bytes.withUnsafeBytes { buf in
            var written = 0
            while written < buf.count {
                // Linux write(2) transfers at most ~2 GiB per call; loop for short writes too.
                let r = write(fd, buf.baseAddress! + written, Swift.min(buf.count - written, 1 << 30))
                if r < 0 {
                    if errno == EINTR { continue }
                    throw CheckpointError.io(operation: "write", path: temp, errno: errno)
                }
                written += r
            }
        }
        guard fsync(fd) == 0 else { throw CheckpointError.io(operation: "fsync", path: temp, errno: errno) }
        closed = true
        // close can report a deferred write error (e.g. on NFS), so it is checked too.
        guard close(fd) == 0 else { throw CheckpointError.io(operation: "close", path: temp, errno: errno) }
        guard rename(temp, path) == 0 else { throw CheckpointError.io(operation: "rename to \(path)", path: temp, errno: errno) }
    } catch {
        if !closed { close(fd) }
        unlink(temp)
        throw error
    }

    let dirfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard dirfd >= 0 else { throw CheckpointError.io(operation: "open directory", path: directory, errno: errno) }
    defer { close(dirfd) }
    // Some filesystems cannot fsync a directory and say EINVAL; the rename is then as durable as
    // that filesystem allows, which is not an error of ours.
    guard fsync(dirfd) == 0 || errno == EINVAL else {
        throw CheckpointError.io(operation: "fsync directory", path: directory, errno: errno)
    }
}

/// Replaces the file at `url` with `bytes` atomically (see `writeAtomically(_:toFile:)`).
public func writeAtomically(_ bytes: [UInt8], to url: URL) throws {
    try writeAtomically(bytes, toFile: url.path)
}

/// The whole content of the file at `path`, with errors as `CheckpointError.io`; a file of
/// more than `maxSize` bytes is refused before anything is allocated.
func readWholeFile(_ path: String, maxSize: UInt64 = UInt64.max) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw CheckpointError.io(operation: "open", path: path, errno: errno) }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw CheckpointError.io(operation: "stat", path: path, errno: errno) }
    guard UInt64(st.st_size) <= maxSize else {
        throw CheckpointError.fileTooLarge(source: path, size: UInt64(st.st_size), limit: maxSize)
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
    guard readError == 0 else { throw CheckpointError.io(operation: "read", path: path, errno: readError) }
    return bytes
}
