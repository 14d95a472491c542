import Foundation
import XCTest

@testable import Service

/// `[executor]`: parsing and validation, and the pieces of the Slurm executor that need no cluster.
final class SlurmConfigTests: XCTestCase {
    let file = "/etc/rrmd/rrmd.toml"

    func parse(_ text: String) throws -> ServiceConfig { try ServiceConfig.parse(text, file: file) }

    func failure(_ text: String, line: UInt = #line) -> ServiceConfigError? {
        do {
            _ = try parse(text)
            XCTFail("accepted:\n\(text)", line: line)
        } catch let error as ServiceConfigError {
            return error
        } catch {
            XCTFail("unexpected \(error)", line: line)
        }
        return nil
    }

    func testLocalIsTheDefault() throws {
        XCTAssertEqual(try parse("").executor, ServiceConfig.Executor())
        XCTAssertEqual(try parse("").executor.kind, .local)
        XCTAssertEqual(try parse("[executor]\nkind = \"local\"").executor.kind, .local)
    }

    func testEverySlurmKey() throws {
        let config = try parse(
            """
            spool = "/shared/rrmd/spool"
            [executor]
            kind = "slurm"
            [executor.slurm]
            partition = "gpu-small"
            account = "lab_42"
            qos = "normal"
            cpus_per_task = 8
            memory = "16G"
            time_limit = "1-02:00:00"
            extra_args = ["--constraint=avx512", "--exclusive"]
            rrmd_path = "/opt/rrmd/bin/../bin/rrmd"
            shared_directory = "/shared/rrmd"
            command_directory = "slurm-bin"
            poll_seconds = 5
            max_resubmits = 4
            signal_seconds = 300
            """)
        XCTAssertEqual(config.executor.kind, .slurm)
        XCTAssertEqual(
            config.executor.slurm,
            ServiceConfig.SlurmSettings(
                partition: "gpu-small", account: "lab_42", qos: "normal", cpusPerTask: 8, memory: "16G",
                timeLimit: "1-02:00:00", extraArguments: ["--constraint=avx512", "--exclusive"],
                rrmdPath: "/opt/rrmd/bin/rrmd", sharedDirectory: "/shared/rrmd",
                commandDirectory: "/etc/rrmd/slurm-bin",
                pollSeconds: 5, maxResubmits: 4, signalSeconds: 300))
    }

    func testSlurmNeedsASharedDirectoryHoldingTheSpool() {
        let missing = failure("spool = \"/srv/spool\"\n[executor]\nkind = \"slurm\"")
        XCTAssertEqual(missing?.key, "executor.slurm.shared_directory")
        XCTAssertTrue(missing?.description.contains("required") ?? false, "\(String(describing: missing))")
        let outside = failure(
            "spool = \"/srv/spool\"\n[executor]\nkind = \"slurm\"\n[executor.slurm]\nshared_directory = \"/srv/sp\"")
        XCTAssertEqual(outside?.key, "executor.slurm.shared_directory")
        XCTAssertTrue(outside?.description.contains("/srv/spool") ?? false, "\(String(describing: outside))")
        XCTAssertNoThrow(
            try parse(
                "spool = \"/srv/spool\"\n[executor]\nkind = \"slurm\"\n[executor.slurm]\nshared_directory = \"/srv\""))
    }

    func testBadSlurmValuesNameTheKey() {
        let slurm = "spool = \"/s/spool\"\n[executor]\nkind = \"slurm\"\n[executor.slurm]\nshared_directory = \"/s\"\n"
        XCTAssertEqual(failure("[executor]\nkind = \"kubernetes\"")?.key, "executor.kind")
        XCTAssertEqual(failure(slurm + "time_limit = \"four hours\"")?.key, "executor.slurm.time_limit")
        XCTAssertEqual(failure(slurm + "memory = \"lots\"")?.key, "executor.slurm.memory")
        XCTAssertEqual(failure(slurm + "partition = \"a b\"")?.key, "executor.slurm.partition")
        XCTAssertEqual(failure(slurm + "rrmd_path = \"bin/rrmd\"")?.key, "executor.slurm.rrmd_path")
        XCTAssertEqual(failure(slurm + "cpus_per_task = 0")?.key, "executor.slurm.cpus_per_task")
        XCTAssertEqual(failure(slurm + "extra_args = [1]")?.key, "executor.slurm.extra_args")
        XCTAssertEqual(failure(slurm + "nodes = 4")?.key, "executor.slurm.nodes")
    }

    func testShellQuoting() {
        XCTAssertEqual(SlurmTask.shellQuoted("/a/b-c_d.e"), "/a/b-c_d.e")
        XCTAssertEqual(SlurmTask.shellQuoted("it's here"), "'it'\\''s here'")
        XCTAssertEqual(SlurmTask.shellQuoted(""), "''")
        XCTAssertEqual(SlurmTask.shellQuoted("$(rm -rf /)"), "'$(rm -rf /)'")
    }

    /// The batch script passes SIGTERM on to rrmd, waits for it to save its state, and publishes
    /// the result (by rename) only when rrmd succeeded. Checked with a stand-in for rrmd.
    func testBatchScriptForwardsSigtermAndPublishesOnlySuccess() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rrmd-slurm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fake = dir.appendingPathComponent("fake-rrmd").path
        // Exits 0 after printing, unless told to wait: then it saves "state" on SIGTERM and exits 130.
        try """
        #!/bin/bash
        if [ "$1" = wait ]; then
          trap 'sleep 0.3; echo saved > "$2"; exit 130' TERM
          while true; do sleep 0.05; done
        fi
        echo '{"ok":true}'
        """.write(toFile: fake, atomically: true, encoding: .utf8)
        chmod(fake, 0o755)

        let done = SlurmTask(name: "mlp", arguments: ["go"], directory: dir)
        try done.scriptText(rrmd: fake).write(to: done.script, atomically: true, encoding: .utf8)
        XCTAssertEqual(try runScript(done.script.path, signalAfter: nil), 0)
        XCTAssertEqual(try String(contentsOf: done.resultFile, encoding: .utf8), "{\"ok\":true}\n")

        let state = dir.appendingPathComponent("state").path
        let stopped = SlurmTask(name: "cnn-small", arguments: ["wait", state], directory: dir)
        try stopped.scriptText(rrmd: fake).write(to: stopped.script, atomically: true, encoding: .utf8)
        XCTAssertEqual(try runScript(stopped.script.path, signalAfter: 0.3), 130)
        XCTAssertEqual(
            try String(contentsOfFile: state, encoding: .utf8), "saved\n", "rrmd got SIGTERM and finished saving")
        XCTAssertFalse(stopped.isDone, "no result from a stopped run")
    }

    private func runScript(_ path: String, signalAfter: Double?) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [path]
        try p.run()
        if let delay = signalAfter {
            Thread.sleep(forTimeInterval: delay)
            kill(p.processIdentifier, SIGTERM)
        }
        p.waitUntilExit()
        return p.terminationStatus
    }

    func testUnreachableIsToldFromRefused() {
        XCTAssertTrue(
            SlurmClient.isUnreachable("slurm_load_jobs error: Unable to contact slurm controller (connect failure)"))
        XCTAssertTrue(
            SlurmClient.isUnreachable(
                "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"))
        XCTAssertFalse(
            SlurmClient.isUnreachable("sbatch: error: Batch job submission failed: Invalid partition name specified"))
    }
}
