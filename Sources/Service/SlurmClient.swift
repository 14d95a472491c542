import Foundation

/// Why a Slurm command did not do what was asked.
public enum SlurmError: Error, CustomStringConvertible, Equatable {
    /// The controller could not be reached (down, restarting, network): try again later.
    case unreachable(command: String, message: String)
    /// The controller answered and refused (an unknown partition or account, a limit).
    case refused(command: String, message: String)
    /// The command could not be started at all (not installed, not executable).
    case missing(command: String, message: String)

    /// One line for the journal.
    public var description: String {
        switch self {
        case .unreachable(let c, let m): return "\(c): the Slurm controller cannot be reached (\(m))"
        case .refused(let c, let m): return "\(c) refused: \(m)"
        case .missing(let c, let m): return "\(c) cannot be run: \(m)"
        }
    }
}

/// One line of `squeue`: a job the controller still knows.
public struct SlurmQueueEntry: Equatable, Sendable {
    /// The job id (`123`, or `123_4` for an array element).
    public var id: String
    /// The job's name (`--job-name`).
    public var name: String
    /// Slurm's state name: PENDING, RUNNING, COMPLETING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
    public var state: String
    /// Why it is pending, or `None`.
    public var reason: String

    /// Whether Slurm is done with the job (it will not run again unless resubmitted).
    public var isFinished: Bool { Self.finishedStates.contains(state) }

    /// States in which a job has ended for good.
    static let finishedStates: Set<String> = [
        "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL",
        "DEADLINE", "REVOKED", "SPECIAL_EXIT",
    ]
}

/// The Slurm commands rrmd uses (`sbatch`, `squeue`, `sacct`, `scancel`), run as child
/// processes. Errors are sorted into the controller being unreachable (transient: the daemon
/// waits and asks again) and a refusal (the request itself is wrong).
public struct SlurmClient: Sendable {
    /// Where the commands are (nil: found on `PATH`).
    public var commandDirectory: String?

    /// A client using the commands in `commandDirectory` (nil: `PATH`).
    public init(commandDirectory: String? = nil) {
        self.commandDirectory = commandDirectory
    }

    /// Submits `script` with `arguments` before it (`sbatch --parsable ARGS SCRIPT`) and returns the job id.
    public func submit(script: String, arguments: [String]) throws -> String {
        let out = try run("sbatch", ["--parsable"] + arguments + [script])
        // --parsable prints "id" or "id;cluster".
        let id = out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(String.init) ?? ""
        guard !id.isEmpty, id.allSatisfy({ $0.isNumber || $0 == "_" }) else {
            throw SlurmError.refused(command: "sbatch", message: "unexpected answer '\(out)'")
        }
        return id
    }

    /// Every job of this user the controller still knows, finished ones included (Slurm forgets
    /// a finished job after `MinJobAge`, 300 s by default), by id.
    public func queue() throws -> [String: SlurmQueueEntry] {
        let out = try run("squeue", ["--me", "--noheader", "--states=all", "--format=%i|%j|%T|%r"])
        var entries: [String: SlurmQueueEntry] = [:]
        for line in out.split(separator: "\n") {
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard fields.count == 4 else { continue }
            entries[fields[0]] = SlurmQueueEntry(id: fields[0], name: fields[1], state: fields[2], reason: fields[3])
        }
        return entries
    }

    /// The final state accounting recorded for job `id` (`sacct`), or nil when accounting is
    /// off or does not know the job.
    public func accountedState(of id: String) -> String? {
        guard
            let out = try? run(
                "sacct", ["--noheader", "--parsable2", "--allocations", "--jobs=\(id)", "--format=State"])
        else { return nil }
        // "CANCELLED by 0" -> "CANCELLED".
        return out.split(separator: "\n").first.flatMap { $0.split(separator: " ").first }.map(String.init)
    }

    /// Cancels jobs (`scancel`); failures are ignored (a job that already ended needs no cancelling).
    public func cancel(_ ids: [String]) {
        guard !ids.isEmpty else { return }
        _ = try? run("scancel", ids)
    }

    /// Runs `command` with `arguments`, returning its standard output; a nonzero exit becomes a `SlurmError`.
    func run(_ command: String, _ arguments: [String]) throws -> String {
        let process = Process()
        if let directory = commandDirectory {
            process.executableURL = URL(fileURLWithPath: directory).appendingPathComponent(command)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [command] + arguments
        }
        // Output goes to files, not pipes: a full pipe buffer cannot stall the command, and
        // both streams are read after it ends.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("rrmd-slurm-\(UUID().uuidString)")
        let outURL = scratch.appendingPathExtension("out")
        let errURL = scratch.appendingPathExtension("err")
        // A file that cannot be created makes the FileHandle below throw, with the reason.
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let outHandle = try FileHandle(forWritingTo: outURL)
        let errHandle = try FileHandle(forWritingTo: errURL)
        process.standardOutput = outHandle
        process.standardError = errHandle
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            try? outHandle.close()
            try? errHandle.close()
            throw SlurmError.missing(command: command, message: "\(error)")
        }
        process.waitUntilExit()
        try? outHandle.close()
        try? errHandle.close()
        let out = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        let err = ((try? String(contentsOf: errURL, encoding: .utf8)) ?? "").trimmingCharacters(
            in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0 else {
            let message = err.isEmpty ? "exit status \(process.terminationStatus)" : err
            if process.terminationStatus == 127 && commandDirectory == nil {
                throw SlurmError.missing(command: command, message: "not found on PATH")
            }
            throw Self.isUnreachable(message)
                ? SlurmError.unreachable(command: command, message: message)
                : SlurmError.refused(command: command, message: message)
        }
        return out
    }

    /// Whether a command's error says the controller could not be reached, as opposed to a refusal.
    static func isUnreachable(_ message: String) -> Bool {
        let signs = [
            "Unable to contact slurm controller", "Socket timed out", "Connection refused", "Connection timed out",
            "Communication connection failure", "Zero Bytes were transmitted", "slurmctld not responding",
            "Transport endpoint is not connected", "No route to host",
        ]
        return signs.contains { message.localizedCaseInsensitiveContains($0) }
    }
}
