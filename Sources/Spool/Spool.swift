import FileSystem
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The spool: the directory state machine of design.md §3 (docs/spool.md has the whole story).
///
/// A teacher's state is the directory it sits in — `tmp/`, `incoming/`, `work/<job>/`,
/// `done/<job>/`, `failed/<job>/` — and each transition is one `rename(2)` followed by an fsync
/// of the directories involved, so a crash at any point leaves a state `recover()` understands.
/// The spool knows no machine learning: the runner (Service) claims jobs, writes their results
/// into `work/<job>/out/` and hands them back through `publish` or `fail`.
///
/// A `Spool` holds no mutable state, so one instance can be used from several threads; the
/// file system arbitrates (a claim is a rename, which only one claimer can win).
public final class Spool: Sendable {
    /// Where the states live.
    public let layout: SpoolLayout

    /// A spool over `layout`; nothing on disk changes until a method is called.
    public init(layout: SpoolLayout) {
        self.layout = layout
    }

    /// A spool rooted at `root`.
    public convenience init(root: URL) {
        self.init(layout: SpoolLayout(root: root))
    }

    // Paths as strings, for the POSIX calls.
    var incomingPath: String { layout.incoming.path }
    var tmpPath: String { layout.tmp.path }
    var workPath: String { layout.work.path }
    var donePath: String { layout.done.path }
    var failedPath: String { layout.failed.path }
    func workPath(_ job: JobID) -> String { workPath + "/" + job.rawValue }
    func donePath(_ job: JobID) -> String { donePath + "/" + job.rawValue }
    func failedPath(_ job: JobID) -> String { failedPath + "/" + job.rawValue }

    /// Takes a job id for a new `work/<job>/` by creating that directory: `preferred` (the id a
    /// submitted file carries) unless some state already uses it, else a fresh one.
    func takeWorkDirectory(preferring preferred: JobID?) throws -> JobID {
        var candidate = preferred ?? JobID()
        for _ in 0..<32 {
            if !FS.exists(donePath(candidate)) && !FS.exists(failedPath(candidate)),
                try FS.makeDirectoryExclusively(workPath(candidate))
            {
                // The new directory must be durable before anything is renamed into it.
                try FS.syncDirectory(workPath)
                return candidate
            }
            candidate = JobID()
        }
        throw FileSystemError.system(
            operation: "create a job directory (every id tried was taken)", path: workPath, errno: EEXIST)
    }

    /// The teacher files directly in `directory` (normally none or one).
    func teacherNames(in directory: String) throws -> [String] {
        try FS.listIfPresent(directory).filter(SpoolNames.isTeacher).sorted()
    }
}
