import Foundation

extension ServiceConfig {
    /// `[executor]`: where a job's students run. `local` trains them one after another in the
    /// daemon's own process; `slurm` hands each one (and the teacher's evaluation) to a Slurm
    /// cluster as a batch job, while the daemon stays the only owner of the spool.
    public struct Executor: Equatable, Sendable {
        /// The two places work can run.
        public enum Kind: String, CaseIterable, Equatable, Sendable {
            /// In the daemon's process, one student at a time.
            case local
            /// As Slurm batch jobs (`[executor.slurm]`).
            case slurm
        }

        /// Which executor runs jobs.
        public var kind: Kind
        /// The Slurm options (used when `kind` is `.slurm`).
        public var slurm: SlurmSettings

        /// An executor; see the properties.
        public init(kind: Kind = .local, slurm: SlurmSettings = SlurmSettings()) {
            self.kind = kind
            self.slurm = slurm
        }
    }

    /// `[executor.slurm]`: what each student's `sbatch` asks for, and how the daemon follows it.
    public struct SlurmSettings: Equatable, Sendable {
        /// `--partition` (nil: the cluster's default).
        public var partition: String?
        /// `--account` (nil: the user's default).
        public var account: String?
        /// `--qos` (nil: the default).
        public var qos: String?
        /// `--cpus-per-task`; also the `--threads` of each student's `rrmd distill`.
        public var cpusPerTask: Int
        /// `--mem`, as Slurm writes it (`8G`, `16000M`); nil: the partition's default.
        public var memory: String?
        /// `--time`, as Slurm writes it (`4:00:00`, `1-00:00:00`); nil: the partition's default.
        /// A student that reaches it saves its state (`--signal`) and is resubmitted.
        public var timeLimit: String?
        /// Further `sbatch` arguments, passed as they are (`--constraint=avx512`, `--gres=...`).
        public var extraArguments: [String]
        /// Where `rrmd` is on the compute nodes (absolute); nil: this daemon's own executable,
        /// which suits a cluster whose nodes see the same file system layout.
        public var rrmdPath: String?
        /// The directory every compute node sees at the same path (absolute): the spool must be
        /// inside it, because students read their teacher and write their results in `work/`.
        public var sharedDirectory: String?
        /// Directory holding `sbatch`, `squeue`, `scontrol` and `sacct` (nil: `PATH`).
        public var commandDirectory: String?
        /// Seconds between two looks at the queue.
        public var pollSeconds: Double
        /// How often one student is resubmitted after its Slurm job ended without a result
        /// (failed, cancelled, timed out, node lost) before the whole job fails.
        public var maxResubmits: Int
        /// Seconds before a time limit or preemption at which Slurm sends SIGTERM, so that
        /// `rrmd distill` saves its state (`--signal=B:TERM@N`).
        public var signalSeconds: Int

        /// Settings; see the properties.
        public init(
            partition: String? = nil, account: String? = nil, qos: String? = nil, cpusPerTask: Int = 2,
            memory: String? = nil, timeLimit: String? = nil, extraArguments: [String] = [], rrmdPath: String? = nil,
            sharedDirectory: String? = nil, commandDirectory: String? = nil, pollSeconds: Double = 30,
            maxResubmits: Int = 3, signalSeconds: Int = 120
        ) {
            self.partition = partition
            self.account = account
            self.qos = qos
            self.cpusPerTask = cpusPerTask
            self.memory = memory
            self.timeLimit = timeLimit
            self.extraArguments = extraArguments
            self.rrmdPath = rrmdPath
            self.sharedDirectory = sharedDirectory
            self.commandDirectory = commandDirectory
            self.pollSeconds = pollSeconds
            self.maxResubmits = maxResubmits
            self.signalSeconds = signalSeconds
        }
    }

    static func readExecutor(_ t: TOMLTableReader, base: String) throws -> Executor {
        try t.rejectUnknownKeys(["kind", "slurm"])
        var executor = Executor()
        executor.kind = try t.choice("kind", default: Executor.Kind.local, choices: Executor.Kind.allCases)
        if let s = try t.subtable("slurm") { executor.slurm = try readSlurm(s, base: base) }
        if executor.kind == .slurm, executor.slurm.sharedDirectory == nil {
            throw ServiceConfigError(
                kind: .invalidValue, file: t.file, key: t.key("slurm.shared_directory"), value: nil,
                expected:
                    "the directory the compute nodes share with this machine (the spool must be inside it); "
                    + "required with kind = \"slurm\"")
        }
        return executor
    }

    private static func readSlurm(_ t: TOMLTableReader, base: String) throws -> SlurmSettings {
        try t.rejectUnknownKeys([
            "partition", "account", "qos", "cpus_per_task", "memory", "time_limit", "extra_args", "rrmd_path",
            "shared_directory", "command_directory", "poll_seconds", "max_resubmits", "signal_seconds",
        ])
        let d = SlurmSettings()
        func word(_ name: String, _ pattern: String, _ expected: String) throws -> String? {
            guard let value = try t.optionalString(name) else { return nil }
            guard value.range(of: pattern, options: .regularExpression) != nil else {
                throw t.invalid(name, t.quote(value), expected)
            }
            return value
        }
        func directory(_ name: String) throws -> String? {
            guard let value = try t.optionalString(name) else { return nil }
            guard !value.isEmpty else { throw t.invalid(name, "\"\"", "a directory path") }
            return resolve(value, against: base)
        }
        let name = "^[A-Za-z0-9_.,-]+$"
        var settings = SlurmSettings(
            partition: try word("partition", name, "a Slurm partition name"),
            account: try word("account", name, "a Slurm account name"),
            qos: try word("qos", name, "a Slurm QOS name"),
            cpusPerTask: try t.int("cpus_per_task", default: d.cpusPerTask, range: 1...1024, unit: "CPUs"),
            memory: try word("memory", "^[0-9]+[KMGT]?$", "a size as sbatch --mem takes it, e.g. \"8G\""),
            timeLimit: try word(
                "time_limit", "^([0-9]+-)?[0-9]+(:[0-9]{2}){0,2}$",
                "a time as sbatch --time takes it, e.g. \"4:00:00\" or \"1-00:00:00\""),
            extraArguments: try t.strings("extra_args"),
            rrmdPath: try t.optionalString("rrmd_path"),
            sharedDirectory: try directory("shared_directory"),
            commandDirectory: try directory("command_directory"),
            pollSeconds: try t.double("poll_seconds", default: d.pollSeconds, range: 0.1...3600),
            maxResubmits: try t.int("max_resubmits", default: d.maxResubmits, range: 0...100),
            signalSeconds: try t.int("signal_seconds", default: d.signalSeconds, range: 0...3600, unit: "seconds"))
        if let path = settings.rrmdPath {
            // A node resolves a relative path against its own working directory: only an absolute one is safe.
            guard path.hasPrefix("/") else {
                throw t.invalid("rrmd_path", t.quote(path), "an absolute path to rrmd on the compute nodes")
            }
            settings.rrmdPath = URL(fileURLWithPath: path).standardizedFileURL.path
        }
        return settings
    }
}
