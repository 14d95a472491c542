import Attacks
import Checkpoint
import Data
import Evaluation
import FileSystem
import Foundation
import Kernels
import ModelIO
import Models
import Pipeline
import Spool
import Training

/// How a job ended (or did not).
public enum JobOutcome: Equatable, Sendable {
    /// Published to done/<job>.
    case done
    /// Moved to failed/<job> with error.json.
    case failed
    /// Identical to a job already done; reported, not redone.
    case duplicate
    /// A stop was requested; the job stays in work/ with its state saved.
    case stopped
    /// A transient error (disk full, permission, dataset missing); the job stays in work/ and is
    /// retried later.
    case retryLater(String)
    /// The job's work directory is gone (removed by hand): there is nothing left to run or fail.
    case vanished
}

/// Runs one claimed job: checks the teacher, distils one student per configured architecture,
/// evaluates each, writes the reports and publishes. Every long step saves state, so the job
/// can be stopped at a step boundary and resumed by a later process.
public final class JobRunner {
    /// The configuration the job runs under.
    public let config: ServiceConfig
    let spool: Spool
    let log: EventLog
    let notifier: any ServiceNotifier
    /// Called whenever the job's status changes; the daemon writes status.json and STATUS=.
    let onStatus: (SpoolStatus.CurrentJob) -> Void
    /// Asked at every step boundary.
    let shouldStop: () -> Bool

    /// A runner; `onStatus` reports progress (throttling is the caller's business).
    public init(
        config: ServiceConfig, spool: Spool, log: EventLog, notifier: any ServiceNotifier,
        shouldStop: @escaping () -> Bool, onStatus: @escaping (SpoolStatus.CurrentJob) -> Void
    ) {
        self.config = config
        self.spool = spool
        self.log = log
        self.notifier = notifier
        self.shouldStop = shouldStop
        self.onStatus = onStatus
    }

    /// A problem with the teacher itself: the job goes to failed/ with this explanation.
    struct BadTeacher: Error {
        var kind, what, whatToDo: String
    }

    /// Processes `job` to one of the outcomes; never throws, so one bad job cannot stop the daemon.
    public func run(_ job: ClaimedJob) -> JobOutcome {
        runGuarded(job) { prepared, status in
            let teacherResult = try evaluateTeacher(
                job, teacher: prepared.teacher, test: prepared.data.test, evalSettings: prepared.evalSettings,
                status: &status)
            var students: [JobReport.Student] = []
            for arch in config.students.architectures {
                status.arch = arch
                guard
                    let student = try distilAndEvaluate(
                        job, arch: arch, teacher: prepared.teacher, teacherRobustAccuracy: teacherResult.robustAccuracy,
                        data: prepared.data, evalSettings: prepared.evalSettings, status: &status)
                else {
                    return .stopped
                }
                students.append(student)
            }
            return try publish(job, prepared: prepared, teacher: teacherResult, students: students, status: &status)
        }
    }

    /// What a job needs once its teacher has passed every check: the teacher, its data, where
    /// the data lives and the evaluation protocol of its students.
    struct PreparedJob {
        /// The teacher, loaded.
        var teacher: LoadedModel
        /// The teacher's threat model.
        var threat: ThreatModel
        /// Where the teacher's dataset is, per the configuration.
        var location: ServiceConfig.DatasetLocation
        /// The dataset, loaded (`[rrm] limit` applied).
        var data: (train: Dataset, test: Dataset)
        /// The protocol every student (and the teacher) is attacked with.
        var evalSettings: RobustnessSettings
    }

    /// Runs the steps every executor shares around `body`: finishing what an earlier attempt
    /// committed, the duplicate check, the teacher's checks; then `body` with the prepared job.
    /// Every error, from those steps or from `body`, becomes an outcome here: a bad teacher fails
    /// the job, a transient error retries it.
    func runGuarded(
        _ job: ClaimedJob, _ body: (PreparedJob, inout SpoolStatus.CurrentJob) throws -> JobOutcome
    ) -> JobOutcome {
        let name = job.record.originalName
        var status = SpoolStatus.CurrentJob(id: job.id, teacher: name, phase: .claimed)
        onStatus(status)
        do {
            if let outcome = try finishCommitted(job) { return outcome }
            if let existing = try spool.findDone(sha256: job.record.sha256), existing != job.id {
                try spool.rejectDuplicate(job, of: existing)
                log.log(
                    event: "duplicate", priority: .notice,
                    message: "\(name) is identical to job \(existing); not redone",
                    fields: ["job": job.id.rawValue, "original": existing.rawValue, "sha256": job.record.sha256])
                return .duplicate
            }
            let teacher = try loadTeacher(job)
            let tmeta = teacher.metadata
            guard let threat = ThreatModel(tmeta.threatModel) else {
                throw BadTeacher(
                    kind: "bad-metadata", what: "threat model '\(tmeta.threatModel)' is not understood",
                    whatToDo: "set rrm.threat_model to none, linf:<eps> or l2:<eps>")
            }
            guard let location = config.datasets[tmeta.dataset] else {
                throw BadTeacher(
                    kind: "unknown-dataset",
                    what:
                        "the teacher was trained on '\(tmeta.dataset)', which this daemon's configuration does not "
                        + "list",
                    whatToDo:
                        "add [datasets.\(tmeta.dataset)] with its path to the configuration, or submit a teacher of a "
                        + "configured dataset (\(config.datasets.keys.sorted().joined(separator: ", ")))"
                )
            }
            let data: (train: Dataset, test: Dataset)
            do {
                data = try DatasetCatalog.loadAny(
                    tmeta.dataset, directory: location.path, limit: config.rrm.limit,
                    folderShape: teacher.network.config.inputShape)
            } catch { return .retryLater("dataset \(tmeta.dataset) at \(location.path) cannot be loaded: \(error)") }
            if let problem = Distiller.compatibilityProblem(teacher: tmeta, train: data.train) {
                throw BadTeacher(
                    kind: "incompatible", what: problem,
                    whatToDo: "submit a teacher trained on the configured \(tmeta.dataset) data")
            }
            let evalSettings = config.evaluation.robustnessSettings(
                norm: threat.norm ?? .linf, teacherEpsilon: threat.norm == nil ? 8.0 / 255 : threat.epsilon,
                teacherEpsilonText: threat.norm == nil ? "8/255" : threat.epsilonText, seed: config.rrm.seed)
            if let problem = evalSettings.problem(numClasses: data.test.numClasses) {
                throw BadTeacher(
                    kind: "incompatible", what: "cannot evaluate students of this teacher: \(problem)",
                    whatToDo: "adjust [evaluation] in the configuration")
            }
            let prepared = PreparedJob(
                teacher: teacher, threat: threat, location: location, data: data, evalSettings: evalSettings)
            return try body(prepared, &status)
        } catch let bad as BadTeacher {
            return failJob(job, kind: bad.kind, what: bad.what, whatToDo: bad.whatToDo)
        } catch let setup as TrainingSetupError {
            return failJob(
                job, kind: "configuration", what: "\(setup)",
                whatToDo:
                    "fix [rrm] batch_size or limit in the configuration, reload it (systemctl reload rrmd) and "
                    + "resubmit the teacher"
            )
        } catch let short as NotEnoughMemory {
            return failJob(job, kind: "not-enough-memory", what: short.description, whatToDo: Self.memoryAdvice)
        } catch ModelError.notEnoughMemory(let short) {
            return failJob(job, kind: "not-enough-memory", what: short.description, whatToDo: Self.memoryAdvice)
        } catch is EvaluationStopped {
            return .stopped
        } catch {
            // Disk full, permissions, an I/O error: wherever it happened (the teacher, the
            // training state, a student, a report, the spool), the job waits in work/ and is retried.
            if Self.transientErrno(of: error) != nil { return .retryLater("\(error)") }
            return failJob(
                job, kind: "error", what: "\(error)",
                whatToDo:
                    "see the journal for the job (journalctl -u rrmd RRMD_JOB=\(job.id)); resubmit once the cause is "
                    + "fixed"
            )
        }
    }

    /// Writes the job's report (report.json, report.md, students.svg) and publishes the job to
    /// done/.
    func publish(
        _ job: ClaimedJob, prepared: PreparedJob, teacher teacherResult: JobReport.Robustness,
        students: [JobReport.Student], status: inout SpoolStatus.CurrentJob
    ) throws -> JobOutcome {
        let tmeta = prepared.teacher.metadata
        status.phase = .publishing
        onStatus(status)
        let report = JobReport(
            job: job.id.rawValue,
            teacher: .init(
                name: job.record.originalName, sha256: job.record.sha256, arch: tmeta.architecture,
                dataset: tmeta.dataset, threatModel: tmeta.threatModel, trainedBy: tmeta.trainedBy,
                robustness: teacherResult),
            threat: "\(prepared.evalSettings.norm.rawValue) epsilon \(prepared.evalSettings.epsilonText)",
            students: students, created: RobustnessReport.timestamp(Date()), rrmdVersion: RRMDVersion.string)
        try report.write(to: job.output)
        let done = try spool.publish(job)
        log.log(
            event: "done", priority: .notice, message: "job \(job.id) published in \(done.path)",
            fields: ["job": job.id.rawValue, "path": done.path])
        return .done
    }

    /// Finishes a job an earlier attempt took past a commit point and returns its outcome, or nil
    /// when there is none and the job is to run. An attempt that met a transient error after the
    /// commit point (an fsync or rename that failed) left the teacher in `out/` (publication) or
    /// `fail/error.json` (failure); running the job again would find no teacher and fail it.
    private func finishCommitted(_ job: ClaimedJob) throws -> JobOutcome? {
        let fm = FileManager.default
        if fm.fileExists(atPath: spool.layout.doneDirectory(job.id).path) {
            // Published; only the tidying failed, which recovery finishes at the next start.
            log.log(
                event: "done", message: "job \(job.id) was published by an earlier attempt",
                fields: ["job": job.id.rawValue, "path": spool.layout.doneDirectory(job.id).path])
            return .done
        }
        if fm.fileExists(atPath: spool.layout.failedDirectory(job.id).path) {
            let kind = (try? spool.failure(of: job.id))?.failure.kind ?? "error"
            log.log(
                event: "failed", priority: .error,
                message:
                    "job \(job.id) (\(job.record.originalName)) was moved to failed/ by an earlier attempt; see "
                    + "\(spool.layout.failedDirectory(job.id).path)/error.json",
                fields: ["job": job.id.rawValue, "kind": kind])
            return .failed
        }
        guard fm.fileExists(atPath: job.directory.path) else {
            log.log(
                event: "dropped", priority: .warning,
                message:
                    "job \(job.id) (\(job.record.originalName)) is no longer in work/ (removed by hand?); dropped "
                    + "from the queue",
                fields: ["job": job.id.rawValue])
            return .vanished
        }
        if !fm.fileExists(atPath: job.teacher.path),
            fm.fileExists(atPath: job.output.appendingPathComponent(job.record.teacher).path)
        {
            let done = try spool.publish(job)
            log.log(
                event: "done", message: "job \(job.id) published in \(done.path)",
                fields: ["job": job.id.rawValue, "path": done.path])
            return .done
        }
        let staged = job.directory.appendingPathComponent("fail/error.json")
        if let bytes = fm.contents(atPath: staged.path) {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            if let record = try? decoder.decode(FailureRecord.self, from: bytes) {
                let f = record.failure
                return failJob(job, kind: f.kind, what: f.what, whatToDo: f.whatToDo, whereText: f.whereText)
            }
        }
        return nil
    }

    /// What an operator can do when a job needs more memory than the service may use.
    static let memoryAdvice =
        "lower [rrm] batch_size or [students] width, or raise MemoryMax= (docs/service.md, \"Memory\"), then resubmit "
        + "the teacher"

    /// The errno of `error` when it is a failed system call that may succeed later (the spool's
    /// list: disk full, quota, permissions, read-only, I/O error, ...), else nil. Looks through
    /// the error types the job meets: the spool's, the checkpoint and report writers' and Foundation's.
    static func transientErrno(of error: Error) -> Int32? {
        var code: Int32?
        if let e = error as? FileSystemError {
            code = e.errno
        } else if let e = error as? ReportWriterError {
            code = e.errno
        } else {
            code = posixCode(error as NSError)
        }
        guard let code, FileSystemError.isTransient(errno: code) else { return nil }
        return code
    }

    private static func posixCode(_ error: NSError) -> Int32? {
        if error.domain == NSPOSIXErrorDomain { return Int32(error.code) }
        // On Linux the underlying error may be stored as a Swift error rather than an NSError.
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? Error, let code = posixCode(underlying as NSError)
        {
            return code
        }
        guard error.domain == NSCocoaErrorDomain else { return nil }
        switch CocoaError.Code(rawValue: error.code) {
        case .fileWriteOutOfSpace: return ENOSPC
        case .fileWriteNoPermission, .fileReadNoPermission: return EACCES
        case .fileWriteVolumeReadOnly: return EROFS
        default: return nil
        }
    }

    /// Reads and checks the teacher; every problem with the file becomes a `BadTeacher`, while a
    /// transient failure to read it (permissions, an I/O error, too many open files) is rethrown
    /// to be retried.
    private func loadTeacher(_ job: ClaimedJob) throws -> LoadedModel {
        if job.record.size == 0 {
            throw BadTeacher(
                kind: "empty", what: "the file is empty",
                whatToDo: "submit the teacher checkpoint itself; was the copy interrupted?")
        }
        if job.record.size > UInt64(config.service.maxTeacherBytes) {
            throw BadTeacher(
                kind: "too-large",
                what: "the file is \(job.record.size) bytes, above the limit of \(config.service.maxTeacherBytes)",
                whatToDo: "raise [service] max_teacher_bytes if this teacher is genuine")
        }
        guard FileManager.default.fileExists(atPath: job.teacher.path) else {
            throw BadTeacher(
                kind: SpoolFailure.missingTeacherKind,
                what: "the teacher is missing from the job's work directory (removed by hand?), so the job cannot run",
                whatToDo: "submit the teacher again")
        }
        do {
            return try ModelLoader.load(path: job.teacher.path)
        } catch  where Self.transientErrno(of: error) != nil {
            throw error
        } catch let error as CheckpointError {
            throw BadTeacher(
                kind: "bad-checkpoint", what: "\(error)",
                whatToDo:
                    "submit a valid safetensors (.safetensors or .safetensors.zst) checkpoint; `rrmd inspect FILE` "
                    + "shows what is wrong"
            )
        } catch let error as ModelLoadError {
            throw BadTeacher(
                kind: "bad-teacher", what: "\(error)",
                whatToDo:
                    "submit a checkpoint of a registry architecture with rrm.* metadata (docs/checkpoints.md); `rrmd "
                    + "inspect FILE` shows what rrmd sees"
            )
        } catch let error as ModelMetadataError {
            throw BadTeacher(
                kind: "bad-metadata", what: "\(error)",
                whatToDo: "fix the teacher's __metadata__ as docs/checkpoints.md describes")
        } catch ModelError.notEnoughMemory(let short) {
            throw BadTeacher(
                kind: "not-enough-memory", what: "\(short)",
                whatToDo:
                    "the teacher's network does not fit in the memory this service may use; raise MemoryMax= "
                    + "(docs/service.md) if the teacher is genuine"
            )
        } catch let error as ModelError {
            throw BadTeacher(
                kind: "bad-metadata", what: "\(error)",
                whatToDo: "fix the teacher's rrm.* metadata as docs/checkpoints.md describes")
        }
    }

    /// Distils and evaluates one student, reusing what an earlier attempt finished; nil when stopped.
    private func distilAndEvaluate(
        _ job: ClaimedJob, arch: String, teacher: LoadedModel, teacherRobustAccuracy: Double,
        data: (train: Dataset, test: Dataset),
        evalSettings: RobustnessSettings, status: inout SpoolStatus.CurrentJob
    ) throws -> JobReport.Student? {
        let fm = FileManager.default
        let studentsDir = job.output.appendingPathComponent("students")
        let reportDir = job.output.appendingPathComponent("reports/\(arch)")
        try fm.createDirectory(at: studentsDir, withIntermediateDirectories: true)
        let checkpoint = studentsDir.appendingPathComponent("\(arch).safetensors.zst")
        let statePath = job.directory.appendingPathComponent("state-\(arch).safetensors.zst").path
        let timesPath = job.directory.appendingPathComponent("train-seconds-\(arch)").path
        var settings = config.rrm.trainingSettings(linfEpsilon: evalSettings.norm == .linf ? evalSettings.epsilon : nil)
        settings.cropPadding = max(data.train.height, data.train.width) / 8

        let student: Network
        let metadata: ModelMetadata
        let trainingSeconds: Double
        if fm.fileExists(atPath: checkpoint.path) {
            // An earlier attempt finished this student; only its evaluation is missing.
            let saved = try ModelLoader.load(path: checkpoint.path)
            student = saved.network
            metadata = saved.metadata
            // A number rrmd wrote itself, but read like any file: nothing in it may crash the report.
            trainingSeconds =
                (try? String(contentsOfFile: timesPath, encoding: .utf8)).flatMap { Double($0) }.flatMap {
                    $0.isFinite && $0 >= 0 ? $0 : nil
                } ?? 0
        } else {
            status.phase = .training
            let epochs = settings.epochs
            var request = DistillationRequest(
                teacher: teacher, teacherPath: job.teacher.path, teacherSHA256: job.record.sha256, student: arch,
                width: config.students.width, train: data.train, test: data.test, settings: settings,
                statePath: statePath,
                outPath: checkpoint.path, zstdLevel: config.zstdLevel, producer: RRMDVersion.producer)
            request.probe = config.rrm.probe(train: data.train, norm: evalSettings.norm, epsilon: evalSettings.epsilon)
            log.log(
                event: "training", message: "job \(job.id): distilling \(arch) from \(teacher.metadata.architecture)",
                fields: ["job": job.id.rawValue, "arch": arch, "epochs": "\(epochs)"])
            // A state saved under other [rrm] settings (the configuration changed since) cannot
            // be continued; the student starts over rather than failing a good teacher.
            let result = try Distiller.run(
                request, shouldStop: shouldStop, discardForeignState: true,
                discarded: { [log] reason in
                    log.log(
                        event: "restart", priority: .notice, message: "job \(job.id): \(arch) starts over: \(reason)",
                        fields: ["job": job.id.rawValue, "arch": arch])
                },
                resumed: { [log] p in
                    log.log(
                        event: "resume",
                        message: "job \(job.id): \(arch) resumes at epoch \(p.epoch + 1), step \(p.step)",
                        fields: ["job": job.id.rawValue, "arch": arch, "epoch": "\(p.epoch + 1)"])
                }
            ) { p in
                // Progress is made, so the watchdog may be fed.
                _ = self.notifier.watchdog()
                var s = status
                s.epoch = p.epoch + 1
                s.epochs = p.epochs
                s.step = p.step
                s.steps = p.stepsPerEpoch
                s.accuracy = p.testAccuracy ?? p.accuracy
                let stepsLeft = Double((p.epochs - p.epoch) * p.stepsPerEpoch - p.step)
                s.etaSeconds = p.imagesPerSecond > 0 ? stepsLeft * Double(settings.batchSize) / p.imagesPerSecond : nil
                self.onStatus(s)
                if p.epochDone {
                    var fields = [
                        "job": job.id.rawValue, "arch": arch, "epoch": "\(p.epoch + 1)",
                        "test_acc": String(format: "%.4f", p.testAccuracy ?? 0),
                    ]
                    fields["probe_robust_acc"] = p.robustAccuracy.map { String(format: "%.4f", $0) }
                    self.log.log(
                        event: "epoch",
                        message: String(
                            format: "job %@: %@ epoch %d/%d, test accuracy %.4f", job.id.rawValue, arch, p.epoch + 1,
                            p.epochs, p.testAccuracy ?? 0)
                            + (p.robustAccuracy.map { String(format: ", probe under attack %.4f", $0) } ?? ""),
                        fields: fields)
                }
            }
            guard let result else { return nil }
            if let epoch = result.summary.restoredEpoch {
                let robust = result.summary.robust
                log.log(
                    event: "restore", priority: .notice,
                    message: String(
                        format: "job %@: %@ lost robustness after epoch %d (probe %.4f, last epoch %.4f); it keeps "
                            + "epoch %d's weights", job.id.rawValue, arch, epoch + 1, robust[epoch] ?? 0,
                        (robust.last ?? nil) ?? 0, epoch + 1),
                    fields: ["job": job.id.rawValue, "arch": arch, "epoch": "\(epoch + 1)"])
            }
            student = result.student
            metadata = result.metadata
            trainingSeconds = result.summary.seconds
            try? writeAtomically(Array("\(trainingSeconds)".utf8), toFile: timesPath)
        }

        status.phase = .evaluating
        status.epoch = nil
        status.step = nil
        status.steps = nil
        status.etaSeconds = nil
        onStatus(status)
        let evaluated = EvaluatedModel(
            network: student, path: "students/\(arch).safetensors.zst",
            sha256: try SHA256.hex(contentsOfFile: checkpoint.path), metadata: metadata)
        let report = try attack(
            evaluated, test: data.test, settings: evalSettings, reportTo: reportDir,
            journal: job.directory.appendingPathComponent("evaluation-\(arch).journal"))
        return studentEntry(
            job, arch: arch, report: report, trainingSeconds: trainingSeconds, projection: student.config.projection,
            teacherRobustAccuracy: teacherRobustAccuracy, evalSettings: evalSettings)
    }

    /// A student's line in the job report, announced in the journal (`report` event, with the
    /// share of the teacher's robustness it kept).
    func studentEntry(
        _ job: ClaimedJob, arch: String, report: RobustnessReport, trainingSeconds: Double, projection: Int?,
        teacherRobustAccuracy: Double, evalSettings: RobustnessSettings
    ) -> JobReport.Student {
        let passed = report.checks.allSatisfy(\.passed)
        let retained = JobReport.retained(student: report.worstCase.robustAccuracy, teacher: teacherRobustAccuracy)
        var fields = [
            "job": job.id.rawValue, "arch": arch, "clean_acc": String(format: "%.4f", report.clean.accuracy),
            "robust_acc": String(format: "%.4f", report.worstCase.robustAccuracy), "epsilon": evalSettings.epsilonText,
            "norm": evalSettings.norm.rawValue, "checks_passed": passed ? "1" : "0",
            "teacher_robust_acc": String(format: "%.4f", teacherRobustAccuracy),
        ]
        fields["retained"] = retained.map { String(format: "%.4f", $0) }
        log.log(
            event: "report", priority: passed ? .notice : .warning,
            message: String(
                format: "job %@: %@ clean %.4f robust %.4f at %@ %@ (teacher %.4f, %@ kept)%@", job.id.rawValue, arch,
                report.clean.accuracy,
                report.worstCase.robustAccuracy, evalSettings.norm.rawValue, evalSettings.epsilonText,
                teacherRobustAccuracy,
                retained.map { String(format: "%.0f%%", 100 * $0) } ?? "none",
                passed ? "" : " (gradient-masking checks failed)"),
            fields: fields)
        return JobReport.Student(
            arch: arch, width: config.students.width, projection: projection,
            checkpoint: "students/\(arch).safetensors.zst", report: "reports/\(arch)/report.md",
            cleanAccuracy: report.clean.accuracy, robustAccuracy: report.worstCase.robustAccuracy,
            trainingSeconds: trainingSeconds, evaluationSeconds: report.timing.totalSeconds, checksPassed: passed,
            retained: retained)
    }

    /// Moves the job to failed/ with the explanation and logs it; a spool error here is retried.
    func failJob(
        _ job: ClaimedJob, kind: String, what: String, whatToDo: String, whereText: String? = nil
    ) -> JobOutcome {
        do {
            try spool.fail(
                job,
                error: SpoolFailure(
                    kind: kind, what: what, whereText: whereText ?? job.record.originalName, whatToDo: whatToDo))
        } catch {
            return .retryLater("could not move job \(job.id) to failed/: \(error)")
        }
        log.log(
            event: "failed", priority: .error,
            message: "job \(job.id) (\(job.record.originalName)) failed: \(what); \(whatToDo)",
            fields: ["job": job.id.rawValue, "kind": kind])
        return .failed
    }
}
