import FileSystem
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The POSIX calls the spool is made of. Each failure becomes a `FileSystemError` with its errno,
/// so the runner can tell a full disk (retry later) from a broken spool. Nothing here follows a
/// symbolic link: the spool's inputs come from other users, and following a link would let them
/// point the daemon at files only it may read.
enum FS {
    /// What `lstat` says a directory entry is.
    typealias Kind = FileKind

    /// The `lstat` facts the spool uses.
    struct Info {
        var kind: Kind
        var size: UInt64
        var modified: Date
    }

    static func error(_ operation: String, _ path: String, _ code: Int32 = errno) -> FileSystemError {
        .system(operation: operation, path: path, errno: code)
    }

    /// `lstat` of `path`, or nil when nothing is there (ENOENT, ENOTDIR).
    static func info(_ path: String) throws -> Info? {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw error("lstat", path)
        }
        let modified = Date(
            timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec) + TimeInterval(st.st_mtim.tv_nsec) / 1e9)
        return Info(kind: Kind(mode: st.st_mode), size: UInt64(max(0, st.st_size)), modified: modified)
    }

    /// Whether anything (even a dangling link) is at `path`.
    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// Creates the directory; false when it exists already (as a directory). Anything else at
    /// `path` is an error: the spool never treats a file or link as one of its directories.
    @discardableResult
    static func makeDirectory(_ path: String, mode: mode_t = 0o750) throws -> Bool {
        if mkdir(path, mode) == 0 { return true }
        let code = errno
        guard code == EEXIST else { throw error("create directory", path, code) }
        guard try info(path)?.kind == .directory else {
            throw error("create directory (something else is in the way)", path, EEXIST)
        }
        return false
    }

    /// Creates the directory only if nothing is at `path`; false when something is. Used to take
    /// a job id: the creator of `work/<id>` owns that job.
    static func makeDirectoryExclusively(_ path: String, mode: mode_t = 0o750) throws -> Bool {
        if mkdir(path, mode) == 0 { return true }
        if errno == EEXIST { return false }
        throw error("create directory", path)
    }

    /// `rename(2)`, which replaces a file at `to`.
    static func move(_ from: String, _ to: String) throws {
        guard rename(from, to) == 0 else { throw error("rename to \(to)", from) }
    }

    /// `rename(2)` that fails with EEXIST instead of replacing whatever is at `to`: two states
    /// of one job must never merge, and a directory rename would silently replace an empty one.
    static func moveNoReplace(_ from: String, _ to: String) throws {
        if let renameat2 = renameat2Function {
            if renameat2(AT_FDCWD, from, AT_FDCWD, to, 1 /* RENAME_NOREPLACE */) == 0 { return }
            // Filesystems without the flag say EINVAL; old kernels ENOSYS. Fall back below.
            if errno != EINVAL && errno != ENOSYS { throw error("rename to \(to)", from) }
        }
        // Without the flag a check then rename is the best available; within one spool only the
        // daemon creates the targets, so nothing races it.
        if exists(to) { throw error("rename to \(to)", from, EEXIST) }
        try move(from, to)
    }

    /// Flushes a directory so the renames and creations in it survive a power loss.
    static func syncDirectory(_ path: String) throws { try FileSystem.syncDirectory(path) }

    /// Flushes each distinct directory once.
    static func syncDirectories(_ paths: String...) throws {
        var seen = Set<String>()
        for path in paths where seen.insert(path).inserted { try syncDirectory(path) }
    }

    /// Flushes a regular file's data without following a link or blocking on a special file.
    static func syncFile(_ path: String) throws { try FileSystem.syncFile(path) }

    /// The names in a directory, without `.` and `..`, in no particular order. A name that is
    /// not UTF-8 comes back with U+FFFD in it, so later calls on it fail with ENOENT.
    static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw error("open directory", path) }
        defer { closedir(dir) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw error("read directory", path) }
                break
            }
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The names in a directory, or none when it does not exist.
    static func listIfPresent(_ path: String) throws -> [String] {
        do {
            return try list(path)
        } catch FileSystemError.system(_, _, let code) where code == ENOENT {
            return []
        }
    }

    /// Removes a file, or nothing when it is gone already.
    static func remove(_ path: String) throws {
        guard unlink(path) == 0 || errno == ENOENT else { throw error("remove", path) }
    }

    /// Removes an empty directory, or nothing when it is gone already.
    static func removeDirectory(_ path: String) throws {
        guard rmdir(path) == 0 || errno == ENOENT else { throw error("remove directory", path) }
    }

    /// Removes `path` and everything below it. A link is removed, never followed, so a link
    /// planted in a job directory cannot make the daemon delete anything outside the spool.
    static func removeTree(_ path: String) throws {
        guard let found = try info(path) else { return }
        if found.kind == .directory {
            for name in try list(path) { try removeTree(path + "/" + name) }
            try removeDirectory(path)
        } else {
            try remove(path)
        }
    }

    /// Reads a small regular file the spool wrote itself (job.json, error.json, the index),
    /// refusing links, special files and anything over `limit` bytes; nil when it is absent.
    static func readSmallFile(_ path: String, limit: Int = 1 << 20) throws -> [UInt8]? {
        do {
            return try readWholeFile(path, limit: UInt64(limit), regularOnly: true)
        } catch FileSystemError.system(_, _, let code) where code == ENOENT {
            return nil
        } catch let FileSystemError.notRegularFile(_, kind) {
            throw SpoolError.damagedRecord(path: path, reason: "it is \(kind), not a regular file")
        } catch let FileSystemError.tooLarge(_, size, _) {
            throw SpoolError.damagedRecord(
                path: path, reason: "it has \(size) bytes, more than the \(limit) such a file can have")
        }
    }
}

/// `renameat2(2)` looked up at run time: Swift's Glibc module does not declare it (it needs
/// `_GNU_SOURCE`), but glibc has exported it since 2.28.
private typealias Renameat2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32

private let renameat2Function: Renameat2? = {
    #if os(Linux)
    guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "renameat2") else { return nil }
    return unsafeBitCast(symbol, to: Renameat2.self)
    #else
    return nil
    #endif
}()
