import Foundation

/// The spool's rules for names: what the watcher ignores, how `rrmd submit` names a file in
/// `incoming/`, and which extension a claimed teacher keeps.
public enum SpoolNames {
    /// Between the job id and the original name in a submitted file's name:
    /// `20261202-214900-3f9a1c2b--robust-resnet.safetensors.zst`.
    public static let separator = "--"

    /// The claimed teacher's name without extension, inside `work/<job>/` and later
    /// `done/<job>/` and `failed/<job>/`.
    public static let teacherStem = "teacher"

    /// Whether `incoming/` must leave `name` alone: the empty name, dotfiles (editors' and
    /// `writeAtomically`'s temporaries) and names ending in `.tmp` or `.part` in any letter case
    /// (copies still being written, `X.PART` as much as `x.part`). The one rule for the inotify
    /// watcher and for every scan that decides what is claimed.
    public static func isIgnored(_ name: String) -> Bool {
        if name.isEmpty || name.hasPrefix(".") { return true }
        let lower = name.lowercased()
        return lower.hasSuffix(".tmp") || lower.hasSuffix(".part")
    }

    /// The extension a teacher named `name` keeps when claimed: the last one, and the one before
    /// when the last is a compression suffix (`.safetensors.zst`, `.pt.gz`). Extensions must be
    /// 1 to 16 letters, digits, `_` or `-`; otherwise there is none, and the teacher is `teacher`.
    public static func teacherExtension(of name: String) -> String {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).dropFirst()
        func usable(_ part: Substring) -> Bool {
            (1...16).contains(part.count)
                && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
        }
        guard let last = parts.last, usable(last) else { return "" }
        let compressed = ["zst", "gz", "xz", "bz2", "lz4"].contains(last.lowercased())
        if compressed, parts.count >= 2, usable(parts[parts.endIndex - 2]) {
            return ".\(parts[parts.endIndex - 2]).\(last)"
        }
        return ".\(last)"
    }

    /// The claimed teacher's file name for an input called `name`, e.g. `teacher.safetensors.zst`.
    public static func teacherName(for name: String) -> String {
        teacherStem + teacherExtension(of: name)
    }

    /// Whether `name` (in a job directory) is the claimed teacher.
    static func isTeacher(_ name: String) -> Bool {
        (name == teacherStem || name.hasPrefix(teacherStem + ".")) && !isIgnored(name)
    }

    /// The job id and original name carried by an `incoming/` name: `<id>--<original>` gives
    /// both, `<id>.<ext>` the id, anything else only itself as the original name.
    public static func parseIncoming(_ name: String) -> (job: JobID?, originalName: String) {
        guard let job = JobID(prefixOf: name) else { return (nil, name) }
        // The id is ASCII, so cutting it off by bytes is exact.
        let rest = String(decoding: Array(name.utf8.dropFirst(JobID.length)), as: UTF8.self)
        if rest.hasPrefix(separator), rest.count > separator.count {
            return (job, String(rest.dropFirst(separator.count)))
        }
        return (job, name)
    }

    /// The longest original name kept in `incoming/` names, in bytes: the id, the separator and
    /// `.part` must fit in the 255 bytes of a Linux file name.
    static let maxOriginalNameBytes = 255 - JobID.length - separator.utf8.count - ".part".utf8.count

    /// `original` made fit for an `incoming/` name: control characters become `_`, and a name
    /// too long keeps its start and its teacher extension.
    static func sanitized(_ original: String) -> String {
        var name = String(
            original.unicodeScalars.map { $0.properties.generalCategory == .control ? "_" : Character($0) })
        if name.utf8.count > maxOriginalNameBytes {
            let ext = teacherExtension(of: name)
            var stem = name.dropLast(ext.count)
            while stem.utf8.count + ext.utf8.count > maxOriginalNameBytes { stem = stem.dropLast() }
            name = String(stem) + ext
        }
        return name
    }
}
