import Evaluation
import FileSystem
import Foundation
import Spool

/// One piece of a job that runs as its own Slurm batch job: the teacher's evaluation
/// (`rrmd evaluate`) or one student (`rrmd distill`, which also evaluates it). Its files live in
/// `work/<job>/slurm/`: the batch script, the record of its latest submission, Slurm's log of
/// each submission, and the result, which the batch script renames into place only when the
/// command succeeded, so the result's presence is what "done" means.
struct SlurmTask {
    /// `teacher` or the student's architecture.
    let name: String
    /// rrmd's arguments (after the executable).
    let arguments: [String]
    /// `work/<job>/slurm`.
    let directory: URL

    /// The batch script.
    var script: URL { directory.appendingPathComponent("\(name).sh") }
    /// The record of the latest submission (`SlurmTaskRecord`).
    var recordFile: URL { directory.appendingPathComponent("\(name).json") }
    /// The command's `--json` output, present only once it succeeded.
    var resultFile: URL { directory.appendingPathComponent("\(name).result.json") }
    /// Slurm's log of submission `id`.
    func logFile(slurmJob id: String) -> URL { directory.appendingPathComponent("\(name)-\(id).out") }

    /// Whether the task has finished.
    var isDone: Bool { FileManager.default.fileExists(atPath: resultFile.path) }

    /// The batch script: runs rrmd in the background so that the SIGTERM Slurm sends before a
    /// time limit or preemption reaches it (rrmd then saves its state and exits), and publishes
    /// the result with fsync and rename only when rrmd succeeded.
    func scriptText(rrmd: String) -> String {
        let command = ([rrmd] + arguments).map(Self.shellQuoted).joined(separator: " ")
        let result = Self.shellQuoted(resultFile.path)
        return """
            #!/bin/bash
            # Written by rrmd for Slurm; the daemon resubmits it as it is when it ends without a result.
            result=\(result)
            \(command) > "$result.part" &
            child=$!
            trap 'kill -TERM "$child" 2>/dev/null' TERM INT
            # wait returns early when a signal is trapped; rrmd goes on saving its state meanwhile.
            wait "$child"
            while kill -0 "$child" 2>/dev/null; do wait "$child"; done
            wait "$child"
            status=$?
            if [ "$status" -eq 0 ]; then
              sync "$result.part" && mv -f "$result.part" "$result" && sync "$(dirname "$result")"
            fi
            exit "$status"

            """
    }

    /// `s` quoted for a POSIX shell.
    static func shellQuoted(_ s: String) -> String {
        if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "/._-:=,+@%".contains($0) }) { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// What the daemon remembers of a task's latest submission (`work/<job>/slurm/<task>.json`,
/// written with fsync and rename): enough to follow the Slurm job after a restart instead of
/// submitting it again.
struct SlurmTaskRecord: Codable, Equatable {
    /// The task's name.
    var task: String
    /// The Slurm job id.
    var slurmJob: String
    /// Submissions so far, this one included.
    var submissions: Int
    /// When this one was submitted.
    var submitted: Date

    private enum CodingKeys: String, CodingKey {
        case task
        case slurmJob = "slurm_job"
        case submissions, submitted
    }

    /// The record in `task`'s record file, or nil when there is none (or it is unreadable).
    static func load(for task: SlurmTask) -> SlurmTaskRecord? {
        guard let bytes = FileManager.default.contents(atPath: task.recordFile.path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(SlurmTaskRecord.self, from: bytes)
    }

    /// Saves the record (fsync, rename).
    func save(for task: SlurmTask) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try writeAtomically(Array(try encoder.encode(self)), to: task.recordFile)
    }
}

extension SlurmTask {
    /// The tasks of a job: the teacher's evaluation, then one per student, each with exactly the
    /// settings the local executor would use, so that a student made on the cluster equals one
    /// made in the daemon's process.
    static func tasks(
        for job: ClaimedJob, prepared: JobRunner.PreparedJob, config: ServiceConfig, threads: Int
    ) -> [SlurmTask] {
        let directory = job.directory.appendingPathComponent("slurm", isDirectory: true)
        let tmeta = prepared.teacher.metadata
        let data = ["--dataset", tmeta.dataset, "--data-dir", prepared.location.path]
        let e = prepared.evalSettings
        // The daemon's test split is already cut to [rrm] limit; the command line says how many images that is.
        let samples = min(e.samples ?? prepared.data.test.count, prepared.data.test.count)
        let evaluation =
            [
                "--norm", e.norm.rawValue, "--epsilon", e.epsilonText, "--attacks", e.attacks.joined(separator: ","),
                "--samples", "\(samples)", "--iterations", "\(e.iterations)", "--restarts", "\(e.restarts)",
                "--target-classes", "\(e.targetClasses)", "--sweep-samples", "\(e.sweepSamples)",
                "--check-samples", "\(e.checkSamples)", "--attack-batch", "\(e.batchSize)", "--attack-seed",
                "\(e.seed)",
            ] + (e.cascade ? ["--cascade"] : [])
        var tasks = [
            SlurmTask(
                name: "teacher",
                arguments: ["evaluate", "--model", job.teacher.path] + data + evaluation + [
                    "--threads", "\(threads)",
                    "--journal", job.directory.appendingPathComponent("evaluation-teacher.journal").path,
                    "--report", job.output.appendingPathComponent("reports/teacher").path, "--json",
                ], directory: directory)
        ]
        let rrm = config.rrm
        let replays = rrm.replays > 1 && prepared.threat.norm == .linf ? rrm.replays : 1
        for arch in config.students.architectures {
            var arguments = [
                "distill", "--teacher", job.teacher.path, "--student", arch, "--width", "\(config.students.width)",
            ]
            arguments += data
            arguments += [
                "--epochs", "\(rrm.epochs)", "--batch-size", "\(rrm.batchSize)", "--lr", "\(Float(rrm.learningRate))",
                "--seed", "\(rrm.seed)", "--replays", "\(replays)", "--feature-loss", rrm.featureLoss.rawValue,
            ]
            if replays > 1 {
                arguments += ["--replay-start", rrm.replayStart.rawValue, "--epsilon-ramp", "\(rrm.replayRamp)"]
            }
            if let x = rrm.xentWeight { arguments += ["--xent-weight", "\(Float(x))"] }
            if let limit = rrm.limit { arguments += ["--limit", "\(limit)"] }
            arguments += evaluation
            arguments += [
                "--threads", "\(threads)",
                "--state", job.directory.appendingPathComponent("state-\(arch).safetensors.zst").path,
                "--out", job.output.appendingPathComponent("students/\(arch).safetensors.zst").path,
                "--report", job.output.appendingPathComponent("reports/\(arch)").path,
                "--journal", job.directory.appendingPathComponent("evaluation-\(arch).journal").path, "--json",
            ]
            tasks.append(SlurmTask(name: arch, arguments: arguments, directory: directory))
        }
        return tasks
    }
}
