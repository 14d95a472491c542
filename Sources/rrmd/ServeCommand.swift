import ArgumentParser
import Foundation
import Logging
import Service
import ServiceLifecycle
import Spool

/// Where the service commands find their configuration: `--config`, else the built-in defaults
/// for a source checkout (spool `./Spool`).
struct ServiceOptions: ParsableArguments {
    @Option(
        help:
            ArgumentHelp(
                "Configuration file (default: /etc/rrmd/rrmd.toml if it exists, else built-in defaults with "
                    + "the spool in ./Spool).")
    ) var config: String?

    /// The configuration, validated: `--config`, else the installed system file when there is
    /// one (so `rrmd submit` on a server reaches the daemon's spool), else the checkout defaults.
    func load() throws -> ServiceConfig {
        if let config { return try ServiceConfig.load(path: config) }
        if FileManager.default.fileExists(atPath: ServiceConfig.systemPath) {
            return try ServiceConfig.load(path: ServiceConfig.systemPath)
        }
        return ServiceConfig.default(forCheckout: FileManager.default.currentDirectoryPath)
    }
}

/// `rrmd serve`: the daemon, run as the one service of a `ServiceGroup` that turns SIGTERM and
/// SIGINT into a graceful shutdown (the daemon saves its job's state and stops). The group runs
/// on Swift's concurrency pool; jobs run here, on the main thread.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract:
            "Watch the spool and distil a robust student per configured architecture from every teacher dropped into "
            + "incoming/.",
        discussion:
            "Run under systemd (Systemd/rrmd.service, Type=notify) or by hand. SIGTERM stops at a step boundary with "
            + "the job's state saved; SIGHUP re-reads the configuration. See docs/service.md."
    )

    @OptionGroup var options: ServiceOptions
    @Flag(help: "Exit once the queue is empty (after recovering and processing what is waiting).") var once = false

    func run() throws {
        let config = try options.load()
        let jobs = MainThreadJobExecutor()
        let daemon = Daemon(config: config, configPath: options.config, once: once, environment: .live(executor: jobs))
        // The daemon reports through its own journal events; the group's own logging is not needed.
        let quiet = Logger(label: "rrmd.service-group", factory: { _ in SwiftLogNoOpLogHandler() })
        // The daemon returning (a stop, or --once with the queue empty) ends the group cleanly.
        let service = ServiceGroupConfiguration.ServiceConfiguration(
            service: daemon, successTerminationBehavior: .gracefullyShutdownGroup)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: quiet))
        let failure = LockedBox<Error?>(nil)
        Task.detached {
            do { try await group.run() } catch { failure.value = error }
            jobs.finish()
        }
        jobs.serve()
        if let error = failure.value { throw error }
    }
}

/// `rrmd submit`: hand a teacher to the daemon safely.
struct SubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Copy a teacher checkpoint into the spool (tmp/, fsync, rename into incoming/) and print its job id.")

    @OptionGroup var options: ServiceOptions
    @Argument(help: "Teacher checkpoint (.safetensors or .safetensors.zst).") var file: String

    func run() throws {
        let config = try options.load()
        let spool = Spool(root: URL(fileURLWithPath: config.spool, isDirectory: true))
        try spool.layout.create()
        let job = try spool.submit(file: URL(fileURLWithPath: file))
        print(job.rawValue)
    }
}

/// `rrmd status`: the queue and the current job, from the spool's own files.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the daemon's state, current job, queue and recent results, read from the spool.")

    @OptionGroup var options: ServiceOptions
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let config = try options.load()
        let spool = Spool(root: URL(fileURLWithPath: config.spool, isDirectory: true))
        let status = try spool.readStatus()
        let snapshot = try spool.snapshot()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            struct Both: Encodable {
                var spool: String
                var status: SpoolStatus?
                var directories: SpoolSnapshot
            }
            print(
                String(
                    decoding: try encoder.encode(Both(spool: config.spool, status: status, directories: snapshot)),
                    as: UTF8.self))
            return
        }
        print("spool \(config.spool)")
        if let s = status {
            let age = Int(Date().timeIntervalSince(s.updated))
            // EPERM: the process exists but belongs to another user (the daemon runs as rrmd,
            // operators as themselves), so it is running.
            let alive = kill(s.pid, 0) == 0 || errno == EPERM
            print("daemon: \(s.state.rawValue) (pid \(s.pid)\(alive ? "" : ", not running"), updated \(age) s ago)")
            if let c = s.current {
                var line = "current: job \(c.id) (\(c.teacher)) \(c.arch ?? "") \(c.phase.rawValue)"
                if let e = c.epoch, let n = c.epochs { line += ", epoch \(e)/\(n)" }
                if let st = c.step, let n = c.steps { line += ", step \(st)/\(n)" }
                if let a = c.accuracy { line += String(format: ", accuracy %.2f%%", 100 * a) }
                if let eta = c.etaSeconds { line += ", ETA \(Int(eta / 60)) min" }
                print(line)
                for t in c.slurm ?? [] {
                    let again = t.submissions > 1 ? " (submission \(t.submissions))" : ""
                    print("  slurm job \(t.job): \(t.task) \(t.state)\(again)")
                }
            }
            for r in s.recent.prefix(10) { print("recent: \(r.job) \(r.outcome.rawValue): \(r.summary)") }
        } else {
            print("daemon: no status file yet (never started on this spool)")
        }
        print(
            "incoming \(snapshot.incoming.count), work \(snapshot.work.count), done \(snapshot.done.count), failed "
                + "\(snapshot.failed.count)"
        )
        for name in snapshot.incoming { print("  waiting: \(name)") }
        for name in snapshot.work { print("  in progress: \(name)") }
    }
}
