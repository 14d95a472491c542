import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A spool operation that did not happen for a reason of the spool's own; the description says
/// what, where and what to do. A failed system call is a `FileSystemError` instead, whose
/// `isTransient` tells the runner whether retrying later (with backoff) can succeed.
///
/// A failed operation leaves the job in the state it was in, so a retry never loses it.
public enum SpoolError: Error, CustomStringConvertible, Equatable, Sendable {
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

    /// What happened, where, and what to do.
    public var description: String {
        switch self {
        case .notRegularFile(let path, let kind):
            return "\(path) is \(kind), not a regular file; submit the checkpoint file itself"
        case .unusableName(let path, let reason):
            return "\(path): \(reason)"
        case .damagedRecord(let path, let reason):
            return
                "\(path) cannot be read: \(reason); it is one of rrmd's own records, so something other than rrmd "
                    + "changed it; move it aside and restart rrmd (done/.index.json and status.json are rebuilt; a "
                        + "job without job.json is hashed again)"
        case .alreadyExists(let path, let reason):
            return "\(path) exists already: \(reason)"
        case .missing(let path, let reason):
            return "\(path) is missing: \(reason)"
        case .busy(let path, let pid):
            let who = pid.map { "process \($0)" } ?? "another process"
            return
                "\(path): \(who) is already serving this spool; stop it first (e.g. systemctl stop rrmd), or give "
                    + "this instance another spool"
        case .refused(let entry):
            return
                "\(entry.failure.whereText): \(entry.failure.what); moved to failed/\(entry.job); "
                    + "\(entry.failure.whatToDo)"
        case .stopped:
            return "stopped on request; the next start continues where this one left off"
        }
    }
}
