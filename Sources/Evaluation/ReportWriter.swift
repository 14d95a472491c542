import Checkpoint
import FileSystem
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Puts a report's files in a directory, each replaced atomically so that a reader (or the
/// spool's `done/` consumer) never sees half a file.
public enum ReportWriter {
    /// File name of the JSON report.
    public static let jsonName = "report.json"
    /// File name of the Markdown report.
    public static let markdownName = "report.md"
    /// File name of the accuracy-against-epsilon chart (written only when there is a sweep).
    public static let sweepChartName = "accuracy_vs_epsilon.svg"
    /// File name of the per-class chart.
    public static let perClassChartName = "per_class.svg"

    /// Writes `per_class.svg`, `accuracy_vs_epsilon.svg` (when the report has sweep points),
    /// `report.md` and `report.json` into `directory`, creating it if missing, and returns the
    /// files in that order.
    ///
    /// Everything is rendered before the first file is touched, so a report that cannot be
    /// encoded leaves the directory as it was. `report.json` is written last: once it is there,
    /// the files it refers to are complete. A chart left by an earlier report that this one no
    /// longer has is removed, so the directory never shows numbers from two runs.
    public static func write(_ report: RobustnessReport, to directory: URL) throws -> [URL] {
        let json: Foundation.Data
        do {
            json = try ReportJSON.encode(report)
        } catch {
            throw ReportWriterError(
                file: directory.appendingPathComponent(jsonName).path,
                reason: "\(error)", hint: "fix the evaluation that produced the value and rerun it")
        }
        var files: [(name: String, bytes: [UInt8])] = [(perClassChartName, Array(SVGChart.perClass(report).utf8))]
        let sweepChart = SVGChart.accuracyVsEpsilon(report)
        if let sweepChart { files.append((sweepChartName, Array(sweepChart.utf8))) }
        files.append((markdownName, Array(ReportMarkdown.render(report).utf8)))
        files.append((jsonName, Array(json)))

        try makeDirectories(directory.path)

        if sweepChart == nil {
            let stale = directory.appendingPathComponent(sweepChartName).path
            if unlink(stale) != 0 && errno != ENOENT {
                let code = errno
                throw ReportWriterError(
                    file: stale,
                    reason: "cannot remove the chart of an earlier report: \(String(cString: strerror(code)))",
                    hint: hint(forErrno: code), cause: .system(operation: "remove", path: stale, errno: code))
            }
        }

        var written: [URL] = []
        for file in files {
            let url = directory.appendingPathComponent(file.name)
            do {
                try writeAtomically(file.bytes, to: url)
            } catch let FileSystemError.system(operation, path, code) {
                throw ReportWriterError(
                    file: url.path, reason: "\(operation) failed: \(String(cString: strerror(code)))",
                    hint: hint(forErrno: code), cause: .system(operation: operation, path: path, errno: code))
            } catch {
                throw ReportWriterError(file: url.path, reason: "\(error)", hint: "check the directory and retry")
            }
            written.append(url)
        }
        return written
    }

    /// `mkdir -p path` with mkdir(2) itself: Foundation's createDirectory reports failures on
    /// Linux without their errno, which the daemon needs to tell a full disk from a bad path.
    static func makeDirectories(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") where !component.isEmpty {
            prefix += "/" + component
            if mkdir(prefix, 0o755) == 0 { continue }
            let code = errno
            var info = stat()
            if code == EEXIST, stat(prefix, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { continue }
            let reported = code == EEXIST ? ENOTDIR : code
            throw ReportWriterError(
                file: path, reason: "cannot create the directory \(prefix): \(String(cString: strerror(reported)))",
                hint: hint(forErrno: reported),
                cause: .system(operation: "create directory", path: prefix, errno: reported))
        }
    }

    /// What a person can do about a failed system call on a report file.
    static func hint(forErrno code: Int32) -> String {
        switch code {
        case EACCES, EPERM, EROFS:
            return
                "make the directory writable by this user (under systemd, list it in ReadWritePaths=) or choose "
                    + "another output directory"
        case ENOSPC, EDQUOT:
            return "free space (or quota) on that filesystem and rerun"
        case ENOENT, ENOTDIR:
            return "check that the output directory exists and is a directory"
        default:
            return "check the output directory and rerun"
        }
    }
}

/// A report file that could not be written: which file, what failed, and what to do.
public struct ReportWriterError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Path of the file (or directory) involved.
    public var file: String
    /// What went wrong.
    public var reason: String
    /// What to do about it.
    public var hint: String
    /// The failed system call, when one failed: lets a caller tell a full disk (worth a retry)
    /// from a report that can never be written.
    public var cause: FileSystemError?

    /// The failed system call's errno, if any.
    public var errno: Int32? { cause?.errno }

    /// Makes an error.
    public init(file: String, reason: String, hint: String, cause: FileSystemError? = nil) {
        self.file = file
        self.reason = reason
        self.hint = hint
        self.cause = cause
    }

    /// One line: file, reason and hint.
    public var description: String {
        "cannot write report file \(file): \(reason); \(hint)"
    }
}
