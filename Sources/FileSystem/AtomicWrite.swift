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
/// the temporary file is removed and a `FileSystemError` carries the errno.
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
    guard fd >= 0 else { throw FileSystemError.system(operation: "create temporary file", path: temp, errno: errno) }

    var closed = false
    do {
        try bytes.withUnsafeBytes { try writeFully(fd, $0, path: temp) }
        guard fsync(fd) == 0 else { throw FileSystemError.system(operation: "fsync", path: temp, errno: errno) }
        closed = true
        // close can report a deferred write error (e.g. on NFS), so it is checked too.
        guard close(fd) == 0 else { throw FileSystemError.system(operation: "close", path: temp, errno: errno) }
        guard rename(temp, path) == 0 else {
            throw FileSystemError.system(operation: "rename to \(path)", path: temp, errno: errno)
        }
    } catch {
        if !closed { close(fd) }
        unlink(temp)
        throw error
    }

    try syncDirectory(directory)
}

/// Writes all of `bytes` to `fd` (`path` names it in errors), looping over short writes and
/// EINTR. A short write is not an error by itself: the next call either goes on or says why it
/// cannot, so a disk that fills mid-write is reported as ENOSPC, not as a byte count.
public func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    var written = 0
    while written < bytes.count {
        // Linux write(2) transfers at most ~2 GiB per call.
        let r = write(fd, bytes.baseAddress! + written, Swift.min(bytes.count - written, 1 << 30))
        if r < 0 {
            if errno == EINTR { continue }
            throw FileSystemError.system(operation: "write", path: path, errno: errno)
        }
        written += r
    }
}

/// Replaces the file at `url` with `bytes` atomically (see `writeAtomically(_:toFile:)`).
public func writeAtomically(_ bytes: [UInt8], to url: URL) throws {
    try writeAtomically(bytes, toFile: url.path)
}

/// Flushes a directory so the renames and creations in it survive a power loss. Some
/// filesystems cannot fsync a directory and say EINVAL; a rename is then as durable as that
/// filesystem allows, which is not an error of ours.
public func syncDirectory(_ path: String) throws {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw FileSystemError.system(operation: "open directory", path: path, errno: errno) }
    defer { close(fd) }
    guard fsync(fd) == 0 || errno == EINVAL else {
        throw FileSystemError.system(operation: "fsync directory", path: path, errno: errno)
    }
}

/// Flushes a regular file's data without following a link or blocking on a special file.
public func syncFile(_ path: String) throws {
    let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { throw FileSystemError.system(operation: "open", path: path, errno: errno) }
    defer { close(fd) }
    guard fsync(fd) == 0 || errno == EINVAL else {
        throw FileSystemError.system(operation: "fsync", path: path, errno: errno)
    }
}
