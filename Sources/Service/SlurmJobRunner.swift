import Evaluation
import FileSystem
import Foundation
import Spool

/// Runs a job on a Slurm cluster. The daemon keeps the spool to itself and does here what needs
/// no compute (the teacher's checks, the report, publication, all shared with `JobRunner`); the
/// teacher's evaluation and every student run as batch jobs (`SlurmTask`), all submitted at
/// once, followed with `squeue` until each has left its result in the job's work directory.
///
/// Faults: a Slurm job that ends without a result (failed, cancelled, timed out, node lost) is
/// resubmitted, and resumes from its saved state and evaluation journal, up to
/// `max_resubmits` times, after which the job fails naming the Slurm job and its state. The
/// controller being unreachable is waited out with backoff. A stop request leaves the Slurm jobs
/// running: the next start finds their ids in `work/<job>/slurm/` and follows them again.
final class SlurmJobRunner {
    let runner: JobRunner
    let settings: ServiceConfig.SlurmSettings
    let client: SlurmClient
    /// The rrmd executable the compute nodes run.
    let rrmd: String

    /// A runner for `runner`'s job with its configuration's `[executor.slurm]`.
    init(runner: JobRunner) {
        self.runner = runner
        settings = runner.config.executor.slurm
        client = SlurmClient(commandDirectory: settings.commandDirectory)
        rrmd = settings.rrmdPath ?? Self.ownExecutable()
    }

    /// This process's executable, absolute.
    static func ownExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    }

    /// Processes `job` to one of the outcomes; never throws.
    func run(_ job: ClaimedJob) -> JobOutcome {
        runner.runGuarded(job) { prepared, status in try follow(job, prepared: prepared, status: &status) }
    }

    private var log: EventLog { runner.log }

    /// Submits what is missing and follows every task until all are done, then publishes.
    private func follow(
        _ job: ClaimedJob, prepared: JobRunner.PreparedJob, status: inout SpoolStatus.CurrentJob
    ) throws -> JobOutcome {
        let tasks = SlurmTask.tasks(for: job, prepared: prepared, config: runner.config, threads: settings.cpusPerTask)
        let fm = FileManager.default
        try fm.createDirectory(at: tasks[0].directory, withIntermediateDirectories: true)
        try fm.createDirectory(at: job.output.appendingPathComponent("students"), withIntermediateDirectories: true)
        var records: [String: SlurmTaskRecord] = [:]
        for task in tasks { records[task.name] = SlurmTaskRecord.load(for: task) }
        var states: [String: String] = [:]
        // A job that ended COMPLETED (or vanished) without a result gets one more look before it is
        // resubmitted: on a network file system the rename may reach this machine a moment later.
        var suspect: Set<String> = []
        var unreachableSince: Date?
        var wait = settings.pollSeconds

        status.phase = .training
        status.arch = nil
        while true {
            if runner.shouldStop() {
                log.log(
                    event: "slurm",
                    message:
                        "job \(job.id): stopping; its Slurm jobs keep running and are followed again at the next start",
                    fields: ["job": job.id.rawValue])
                return .stopped
            }
            let pending = tasks.filter { !$0.isDone }
            for task in tasks where task.isDone && states[task.name] != "DONE" {
                states[task.name] = "DONE"
                log.log(
                    event: "slurm", message: "job \(job.id): \(task.name) finished on the cluster",
                    fields: [
                        "job": job.id.rawValue, "arch": task.name, "slurm_job": records[task.name]?.slurmJob ?? "",
                    ])
            }
            if pending.isEmpty { break }

            let queue: [String: SlurmQueueEntry]
            do {
                queue = try client.queue()
                if let since = unreachableSince {
                    log.log(
                        event: "slurm", priority: .notice,
                        message:
                            "job \(job.id): the Slurm controller answers again after "
                            + "\(Int(Date().timeIntervalSince(since))) s",
                        fields: ["job": job.id.rawValue])
                    unreachableSince = nil
                    wait = settings.pollSeconds
                }
            } catch let error as SlurmError {
                noteUnreachable(job, error, since: &unreachableSince, wait: &wait)
                for task in pending { states[task.name] = "UNREACHABLE" }
                report(tasks, records, states, &status)
                pause(wait)
                wait = min(wait * 2, 300)
                continue
            }

            for task in pending {
                if let record = records[task.name] {
                    if let entry = queue[record.slurmJob], !entry.isFinished {
                        if states[task.name] != entry.state {
                            states[task.name] = entry.state
                            log.log(
                                event: "slurm",
                                message: "job \(job.id): \(task.name) is \(entry.state) as Slurm job \(record.slurmJob)"
                                    + (entry.state == "PENDING" ? " (\(entry.reason))" : ""),
                                fields: [
                                    "job": job.id.rawValue, "arch": task.name, "slurm_job": record.slurmJob,
                                    "slurm_state": entry.state,
                                ])
                        }
                        continue
                    }
                    if task.isDone { continue }
                    // Ended without a result.
                    let state = queue[record.slurmJob]?.state ?? client.accountedState(of: record.slurmJob)
                    if state == nil || state == "COMPLETED", !suspect.contains(task.name) {
                        suspect.insert(task.name)
                        continue
                    }
                    suspect.remove(task.name)
                    let how = state.map { "ended \($0)" } ?? "is no longer known to Slurm"
                    let logPath = task.logFile(slurmJob: record.slurmJob).path
                    if record.submissions > settings.maxResubmits {
                        client.cancel(
                            pending.compactMap { records[$0.name]?.slurmJob }.filter { $0 != record.slurmJob })
                        return runner.failJob(
                            job, kind: "slurm",
                            what:
                                "\(task.name): Slurm job \(record.slurmJob) \(how) without a result, after "
                                + "\(record.submissions) submissions (its log: \(logPath))",
                            whatToDo:
                                "read the log; raise [executor.slurm] time_limit or memory if the job ran out of "
                                + "either, or max_resubmits if nodes fail often; then resubmit the teacher")
                    }
                    log.log(
                        event: "slurm", priority: .warning,
                        message:
                            "job \(job.id): \(task.name)'s Slurm job \(record.slurmJob) \(how) without a result; "
                            + "submitting it again (it resumes from its saved state; log: \(logPath))",
                        fields: [
                            "job": job.id.rawValue, "arch": task.name, "slurm_job": record.slurmJob,
                            "slurm_state": state ?? "UNKNOWN",
                        ])
                    if let outcome = submit(task, job: job, submissions: record.submissions + 1, into: &records) {
                        return outcome
                    }
                } else if let adopted = queue.values.first(where: { $0.name == jobName(job, task) && !$0.isFinished }) {
                    // Submitted by an earlier run that died before it could write the record.
                    let record = SlurmTaskRecord(
                        task: task.name, slurmJob: adopted.id, submissions: 1, submitted: Date())
                    try record.save(for: task)
                    records[task.name] = record
                    log.log(
                        event: "slurm", message: "job \(job.id): \(task.name) found running as Slurm job \(adopted.id)",
                        fields: ["job": job.id.rawValue, "arch": task.name, "slurm_job": adopted.id])
                } else if let outcome = submit(task, job: job, submissions: 1, into: &records) {
                    return outcome
                }
            }
            report(tasks, records, states, &status)
            pause(wait)
        }
        return try publish(job, tasks: tasks, prepared: prepared, status: &status)
    }

    /// `rrmd-<job>-<task>`: how a task's Slurm job is named (and found again).
    private func jobName(_ job: ClaimedJob, _ task: SlurmTask) -> String { "rrmd-\(job.id.rawValue)-\(task.name)" }

    /// Writes the batch script, submits it and records the id; returns an outcome only when the
    /// job cannot go on (Slurm refused the submission). An unreachable controller is left for the
    /// next round.
    private func submit(
        _ task: SlurmTask, job: ClaimedJob, submissions: Int, into records: inout [String: SlurmTaskRecord]
    ) -> JobOutcome? {
        var arguments = [
            "--job-name=\(jobName(job, task))", "--output=\(task.directory.path)/\(task.name)-%j.out",
            "--chdir=\(job.directory.path)", "--cpus-per-task=\(settings.cpusPerTask)", "--ntasks=1",
            "--signal=B:TERM@\(settings.signalSeconds)",
        ]
        if let p = settings.partition { arguments.append("--partition=\(p)") }
        if let a = settings.account { arguments.append("--account=\(a)") }
        if let q = settings.qos { arguments.append("--qos=\(q)") }
        if let m = settings.memory { arguments.append("--mem=\(m)") }
        if let t = settings.timeLimit { arguments.append("--time=\(t)") }
        arguments += settings.extraArguments
        do {
            try writeAtomically(Array(task.scriptText(rrmd: rrmd).utf8), to: task.script)
            let id = try client.submit(script: task.script.path, arguments: arguments)
            let record = SlurmTaskRecord(task: task.name, slurmJob: id, submissions: submissions, submitted: Date())
            records[task.name] = record
            try record.save(for: task)
            log.log(
                event: "slurm", priority: .notice,
                message:
                    "job \(job.id): \(task.name) submitted as Slurm job \(id)"
                    + (submissions > 1 ? " (submission \(submissions))" : ""),
                fields: [
                    "job": job.id.rawValue, "arch": task.name, "slurm_job": id, "submissions": "\(submissions)",
                ])
            return nil
        } catch SlurmError.unreachable(_, let message) {
            log.log(
                event: "slurm", priority: .warning,
                message: "job \(job.id): cannot submit \(task.name) now, the controller is unreachable (\(message))",
                fields: ["job": job.id.rawValue, "arch": task.name])
            return nil
        } catch {
            // Refused (a wrong partition or account) or a file that cannot be written: the job
            // waits in work/ and is retried; the Slurm jobs already submitted keep running.
            return .retryLater("submitting \(task.name) to Slurm: \(error)")
        }
    }

    /// Logs an unreachable controller: once when it starts, then every ten minutes.
    private func noteUnreachable(_ job: ClaimedJob, _ error: SlurmError, since: inout Date?, wait: inout Double) {
        let now = Date()
        let first = since == nil
        if first { since = now }
        let elapsed = now.timeIntervalSince(since!)
        guard first || elapsed.truncatingRemainder(dividingBy: 600) < wait else { return }
        log.log(
            event: "slurm", priority: .warning,
            message:
                "job \(job.id): cannot read the Slurm queue (\(error)); waiting, nothing is lost"
                + (first ? "" : " (for \(Int(elapsed)) s now)"),
            fields: ["job": job.id.rawValue])
    }

    /// Sleeps `seconds`, waking early for a stop request.
    private func pause(_ seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end, !runner.shouldStop() {
            Thread.sleep(forTimeInterval: min(0.2, max(0, end.timeIntervalSinceNow)))
        }
    }

    /// Sends the tasks' states to status.json and STATUS=.
    private func report(
        _ tasks: [SlurmTask], _ records: [String: SlurmTaskRecord], _ states: [String: String],
        _ status: inout SpoolStatus.CurrentJob
    ) {
        status.slurm = tasks.compactMap { task in
            guard let record = records[task.name] else { return nil }
            return SpoolStatus.SlurmTaskState(
                task: task.name, job: record.slurmJob, state: task.isDone ? "DONE" : states[task.name] ?? "SUBMITTED",
                submissions: record.submissions)
        }
        runner.onStatus(status)
        // Following the cluster is this job's progress; a hung controller shows as warnings, not as a hung daemon.
        _ = runner.notifier.watchdog()
    }

    /// Reads every task's result and publishes the job as the local executor would.
    private func publish(
        _ job: ClaimedJob, tasks: [SlurmTask], prepared: JobRunner.PreparedJob, status: inout SpoolStatus.CurrentJob
    ) throws -> JobOutcome {
        let decoder = JSONDecoder()
        let teacherReport = try decoder.decode(RobustnessReport.self, from: try Data(contentsOf: tasks[0].resultFile))
        let teacher = try runner.recordTeacher(
            job, report: teacherReport, architecture: prepared.teacher.metadata.architecture,
            evalSettings: prepared.evalSettings)
        var students: [JobReport.Student] = []
        for task in tasks.dropFirst() {
            let summary = try decoder.decode(DistillSummary.self, from: try Data(contentsOf: task.resultFile))
            let reportFile = job.output.appendingPathComponent("reports/\(task.name)/report.json")
            let report = try decoder.decode(RobustnessReport.self, from: try Data(contentsOf: reportFile))
            students.append(
                runner.studentEntry(
                    job, arch: task.name, report: report, trainingSeconds: summary.seconds,
                    projection: summary.projection == 0 ? nil : summary.projection,
                    teacherRobustAccuracy: teacher.robustAccuracy, evalSettings: prepared.evalSettings))
        }
        status.slurm = nil
        return try runner.publish(job, prepared: prepared, teacher: teacher, students: students, status: &status)
    }

    /// The part of `rrmd distill --json` the report needs.
    private struct DistillSummary: Decodable {
        var seconds: Double
        var projection: Int
    }
}

extension SlurmJobRunner {
    /// What can be checked of a Slurm setup from the daemon's machine, logged at start-up: the
    /// shared directory and `rrmd` exist here, and the controller answers. Nothing here stops
    /// the daemon (the controller may come up later); each problem is a warning saying what to do.
    static func checkCluster(_ config: ServiceConfig, log: EventLog) {
        let settings = config.executor.slurm
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if let shared = settings.sharedDirectory,
            !fm.fileExists(atPath: shared, isDirectory: &isDirectory) || !isDirectory.boolValue
        {
            log.log(
                event: "slurm", priority: .warning,
                message: "[executor.slurm] shared_directory \(shared) does not exist on this machine")
        }
        let rrmd = settings.rrmdPath ?? ownExecutable()
        if !fm.isExecutableFile(atPath: rrmd) {
            log.log(
                event: "slurm", priority: .warning,
                message:
                    "rrmd_path \(rrmd) is not an executable here; it must be one on every compute node at that path")
        }
        let client = SlurmClient(commandDirectory: settings.commandDirectory)
        do {
            let queue = try client.queue()
            log.log(
                event: "slurm",
                message:
                    "executor: Slurm (\(queue.count) job(s) of this user known to the controller); students run as "
                    + "batch jobs, the spool \(config.spool) must be mounted at the same path on every node",
                fields: ["shared_directory": settings.sharedDirectory ?? ""])
        } catch {
            log.log(
                event: "slurm", priority: .warning,
                message: "executor: Slurm, but \(error); jobs wait until it answers")
        }
    }
}
