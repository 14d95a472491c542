import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A spool operation that did not happen; the description says what, where and what to do, and
/// `isTransient` tells the runner whether retrying later (with backoff) can succeed.
///
/// A failed operation leaves the job in the state it was in, so a retry never loses it.
public enum SpoolError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A system call failed: `operation` such as "rename to <path>" or "fsync", on `path`.
    case system(operation: String, path: String, errno: Int32)
    /// `rrmd submit` was given something other than a regular file (`kind` says what).
    case notRegularFile(path: String, kind: String)
    /// A file name the spool cannot use as it is.
    case unusableName(path: String, reason: String)
    /// A record the spool keeps (job.json, error.json, status.json, the done index) cannot be read.
    case damagedRecord(path: String, reason: String)
    /// The target of a transition exists already (e.g. `done/<job>` when publishing).
    case alreadyExists(path: String, reason: String)
    /// Something an operation needs is not there (e.g. the job's work directory).
    case missing(path: String, reason: String)
    /// Another process (`pid`, when it could be read) holds the spool's lock.
    case busy(path: String, pid: Int32?)
    /// A special file turned up where a claimed teacher should be; it was moved to
    /// `failed/<job>/` unopened, as `entry` describes.
    case refused(RefusedEntry)
    /// A stop was requested while the spool was working (hashing a large teacher during
    /// recovery); what it was doing is left to the next start, as after a crash.
    case stopped

    /// Whether the cause is in the environment and may go away (disk full, quota, permissions
    /// being fixed, a read-only remount, too many open files, an I/O error): the runner should
    /// retry later rather than fail the job.
    public var isTransient: Bool {
        if case let .system(_, _, code) = self { return Self.isTransient(errno: code) }
        return false
    }

    /// The errno of a failed system call, if that is what this is.
    public var errno: Int32? {
        if case let .system(_, _, code) = self { return code }
        return nil
    }

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
        case let .system(operation, path, code):
            return "\(path): \(operation) failed: \(String(cString: strerror(code))) (errno \(code)); \(Self.advice(errno: code))"
        case let .notRegularFile(path, kind):
            return "\(path) is \(kind), not a regular file; submit the checkpoint file itself"
        case let .unusableName(path, reason):
            return "\(path): \(reason)"
        case let .damagedRecord(path, reason):
            return "\(path) cannot be read: \(reason); it is one of rrmd's own records, so something other than rrmd changed it; move it aside and restart rrmd (done/.index.json and status.json are rebuilt; a job without job.json is hashed again)"
        case let .alreadyExists(path, reason):
            return "\(path) exists already: \(reason)"
        case let .missing(path, reason):
            return "\(path) is missing: \(reason)"
        case let .busy(path, pid):
            let who = pid.map { "process \($0)" } ?? "another process"
            return "\(path): \(who) is already serving this spool; stop it first (e.g. systemctl stop rrmd), or give this instance another spool"
        case let .refused(entry):
            return "\(entry.failure.whereText): \(entry.failure.what); moved to failed/\(entry.job); \(entry.failure.whatToDo)"
        case .stopped:
            return "stopped on request; the next start continues where this one left off"
        }
    }

    /// What an operator can do about a failed system call.
    static func advice(errno code: Int32) -> String {
        switch code {
        case ENOSPC: return "free space on the spool's filesystem; rrmd retries the job"
        case EDQUOT: return "raise the disk quota of the user rrmd runs as, or free space; rrmd retries the job"
        case EACCES, EPERM:
            return "give the user rrmd runs as read and write access to the spool directories (they are created with mode 0750); rrmd retries the job"
        case EROFS: return "the filesystem is read-only: remount it read-write, or list the spool in ReadWritePaths= of the unit; rrmd retries the job"
        case EMFILE, ENFILE: return "too many open files: raise LimitNOFILE= of the unit; rrmd retries the job"
        case EIO: return "the disk reported an I/O error: check the kernel log (journalctl -k) and the disk; rrmd retries the job"
        case ENOMEM: return "the machine is out of memory; rrmd retries the job"
        case EXDEV: return "all spool directories must be on one filesystem (a rename cannot cross filesystems); do not mount anything below the spool root"
        case ENOENT, ENOTDIR: return "check that the spool root exists and that nothing removed its directories while rrmd ran"
        case EEXIST, ENOTEMPTY: return "something else already has this name; move it aside and retry"
        case ELOOP: return "a symbolic link is in the way, and rrmd never follows links in the spool; replace it with the real file or directory"
        default: return "check the path and the spool directory's permissions and filesystem"
        }
    }
}
