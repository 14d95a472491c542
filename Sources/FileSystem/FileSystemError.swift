import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file operation that did not happen. It is the one error in rrmd that carries an errno, so
/// every caller (checkpoint reader and writer, report writer, spool, daemon) tells a full disk,
/// which is worth a retry, from a path that can never work the same way.
public enum FileSystemError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A system call failed: `operation` such as "rename to <path>" or "fsync", on `path`.
    case system(operation: String, path: String, errno: Int32)
    /// A whole-file read refused a file larger than its limit, before allocating anything.
    case tooLarge(path: String, size: UInt64, limit: UInt64)
    /// A read that accepts only regular files met something else (`kind` says what).
    case notRegularFile(path: String, kind: String)

    /// The errno of a failed system call, if that is what this is.
    public var errno: Int32? {
        if case .system(_, _, let code) = self { return code }
        return nil
    }

    /// Whether the cause is in the environment and may go away (disk full, quota, permissions
    /// being fixed, a read-only remount, too many open files, an I/O error), so that trying
    /// again later can succeed.
    public var isTransient: Bool { errno.map(Self.isTransient(errno:)) ?? false }

    /// Whether a system call failing with `code` may succeed when retried later.
    public static func isTransient(errno code: Int32) -> Bool {
        switch code {
        case ENOSPC, EDQUOT, EACCES, EPERM, EROFS, EMFILE, ENFILE, EIO, ENOMEM, EAGAIN, EBUSY, EINTR: return true
        default: return false
        }
    }

    /// What happened, where, and what to do.
    public var description: String {
        switch self {
        case .system(let operation, let path, let code):
            return
                "\(path): \(operation) failed: \(String(cString: strerror(code))) (errno \(code)); "
                    + "\(Self.advice(errno: code))"
        case .tooLarge(let path, let size, let limit):
            return "\(path): the file has \(size) bytes, over the \(limit)-byte limit; nothing of it was read"
        case .notRegularFile(let path, let kind):
            return "\(path) is \(kind), not a regular file"
        }
    }

    /// What a person can do about a system call failing with `code`.
    public static func advice(errno code: Int32) -> String {
        switch code {
        case ENOSPC: return "free space on that filesystem"
        case EDQUOT: return "raise the disk quota of the user rrmd runs as, or free space"
        case EACCES, EPERM:
            return
                "give the user rrmd runs as read and write access to the directory (the spool's are created with mode "
                    + "0750)"
        case EROFS:
            return
                "the filesystem is read-only: remount it read-write, or list the directory in ReadWritePaths= of the "
                    + "unit"
        case EMFILE, ENFILE: return "too many open files: raise LimitNOFILE= of the unit"
        case EIO: return "the disk reported an I/O error: check the kernel log (journalctl -k) and the disk"
        case ENOMEM: return "the machine is out of memory"
        case EXDEV:
            return
                "a rename cannot cross filesystems: keep all spool directories on one filesystem (mount nothing below "
                    + "the spool root)"
        case ENOENT, ENOTDIR: return "check that the directory exists and that nothing removed it meanwhile"
        case EEXIST, ENOTEMPTY: return "something else already has this name; move it aside and retry"
        case ELOOP:
            return
                "a symbolic link is in the way, and rrmd never follows links there; replace it with the real file or "
                    + "directory"
        case EISDIR: return "a directory has that name; give the path of a file"
        default: return "check the path, its permissions and its filesystem"
        }
    }
}
