import Foundation
import TestSupport
import XCTest

/// Checks the files in `Systemd/` with systemd's own tools, so a typo in a unit or a weakened
/// sandbox fails CI instead of surfacing on a server.
final class SystemdUnitTests: XCTestCase {
    let systemd = TestFixtures.checkout.appendingPathComponent("Systemd").path
    var unit: String { systemd + "/rrmd.service" }
    /// Where the unit expects the binary (`ExecStart=`).
    let installedBinary = "/usr/local/bin/rrmd"

    /// Runs a tool and returns its exit status and stdout + stderr; nil when it is not installed.
    func run(_ tool: String, _ arguments: [String], stdin: String? = nil) throws -> (status: Int32, output: String)? {
        guard
            let path = ["/usr/bin/", "/bin/", "/usr/sbin/"].map({ $0 + tool }).first(
                where: FileManager.default.isExecutableFile)
        else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let input = Pipe()
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func requireTool(_ tool: String) throws {
        guard
            ["/usr/bin/", "/bin/", "/usr/sbin/"].contains(where: {
                FileManager.default.isExecutableFile(atPath: $0 + tool)
            })
        else {
            throw XCTSkip("\(tool) is not installed (Debian: apt-get install systemd); the unit files were not checked")
        }
    }

    /// `systemd-analyze verify` checks that ExecStart= names an executable file. The unit points at
    /// the installed location, which a build machine does not have, so the check runs on a copy in
    /// which only that path is replaced by an executable stand-in; every other line is verified as
    /// written. The original is verified too, and must produce no complaint other than that path.
    func testVerifyIsSilent() throws {
        try requireTool("systemd-analyze")
        let original = try String(contentsOfFile: unit, encoding: .utf8)
        XCTAssertTrue(original.contains("\nExecStart=\(installedBinary) serve --config /etc/rrmd/rrmd.toml\n"))

        let dir = NSTemporaryDirectory() + "rrmd-unit-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let standIn = dir + "/rrmd"
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: standIn)
        let copy = original.replacingOccurrences(of: "ExecStart=\(installedBinary) ", with: "ExecStart=\(standIn) ")
        XCTAssertEqual(copy.split(separator: "\n").count, original.split(separator: "\n").count)
        try copy.write(toFile: dir + "/rrmd.service", atomically: true, encoding: .utf8)

        let (status, output) = try XCTUnwrap(run("systemd-analyze", ["verify", dir + "/rrmd.service"]))
        XCTAssertEqual(output, "", "systemd-analyze verify complained about Systemd/rrmd.service")
        XCTAssertEqual(status, 0)

        let (_, direct) = try XCTUnwrap(run("systemd-analyze", ["verify", unit]))
        if FileManager.default.isExecutableFile(atPath: installedBinary) {
            XCTAssertEqual(direct, "")
        } else {
            let lines = direct.split(separator: "\n")
            XCTAssertEqual(
                lines, ["rrmd.service: Command \(installedBinary) is not executable: No such file or directory"],
                "the original may differ from the checked copy only in the missing binary")
        }
    }

    func testExposureScoreIsAtMostTwo() throws {
        try requireTool("systemd-analyze")
        let (status, output) = try XCTUnwrap(run("systemd-analyze", ["security", "--offline=true", unit]))
        guard let line = output.split(separator: "\n").first(where: { $0.contains("Overall exposure level") }) else {
            return XCTFail("no 'Overall exposure level' line (status \(status)):\n\(output)")
        }
        // "→ Overall exposure level for rrmd.service: 0.2 SAFE 😀"
        let afterColon = line.split(separator: ":").last.map(String.init) ?? ""
        let score = try XCTUnwrap(afterColon.split(separator: " ").first.flatMap { Double($0) }, String(line))
        XCTAssertLessThanOrEqual(score, 2.0, "exposure rose above 2.0:\n\(output)")
        XCTAssertEqual(status, 0)
    }

    func testTheUnitKeepsItsContract() throws {
        let text = try String(contentsOfFile: unit, encoding: .utf8)
        let settings = Set(
            text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.hasPrefix("#") })
        for required in [
            "Type=notify", "NotifyAccess=main", "WatchdogSec=10min", "Restart=on-failure", "User=rrmd", "Group=rrmd",
            "ExecReload=/bin/kill -HUP $MAINPID", "ProtectSystem=strict", "ReadWritePaths=/var/spool/rrmd",
            "NoNewPrivileges=yes", "CapabilityBoundingSet=", "RestrictAddressFamilies=AF_UNIX",
            "SystemCallFilter=@system-service", "CPUSchedulingPolicy=batch",
        ] {
            XCTAssertTrue(settings.contains(required), "Systemd/rrmd.service lacks \(required)")
        }
        XCTAssertEqual(
            settings.filter { $0.hasPrefix("ReadWritePaths=") }.count, 1, "the spool is the only writable path")
    }

    /// Creates the user and the spool in a scratch root with systemd's own tools and checks the
    /// owners and modes that the unit's User= and ReadWritePaths= rely on.
    func testSysusersAndTmpfilesCreateTheSpool() throws {
        try requireTool("systemd-sysusers")
        try requireTool("systemd-tmpfiles")
        guard getuid() == 0 else {
            throw XCTSkip("creating files owned by rrmd needs root; sysusers/tmpfiles were not exercised")
        }
        let root = NSTemporaryDirectory() + "rrmd-root-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }

        let sysusers = try String(contentsOfFile: systemd + "/rrmd.sysusers", encoding: .utf8)
        let users = try XCTUnwrap(run("systemd-sysusers", ["--root=\(root)", "-"], stdin: sysusers))
        XCTAssertEqual(users.status, 0, users.output)
        let passwd = try String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)
        let entry = try XCTUnwrap(passwd.split(separator: "\n").first { $0.hasPrefix("rrmd:") }).split(
            separator: ":", omittingEmptySubsequences: false)
        let uid = try XCTUnwrap(Int(entry[2]))
        XCTAssertLessThan(uid, 1000, "a system user")
        XCTAssertEqual(entry[6], "/usr/sbin/nologin")

        let tmpfiles = try String(contentsOfFile: systemd + "/rrmd.tmpfiles", encoding: .utf8)
        let created = try XCTUnwrap(run("systemd-tmpfiles", ["--root=\(root)", "--create", "-"], stdin: tmpfiles))
        XCTAssertEqual(created.status, 0, created.output)
        let expected: [String: Int] = [
            "": 0o2750, "/tmp": 0o2770, "/incoming": 0o2770, "/work": 0o2750, "/done": 0o2750, "/failed": 0o2750,
        ]
        for (sub, mode) in expected {
            var st = stat()
            XCTAssertEqual(stat(root + "/var/spool/rrmd" + sub, &st), 0, "missing /var/spool/rrmd\(sub)")
            XCTAssertEqual(Int(st.st_uid), uid, sub)
            XCTAssertEqual(Int(st.st_mode) & 0o7777, mode, "mode of /var/spool/rrmd\(sub)")
            XCTAssertTrue((st.st_mode & S_IFMT) == S_IFDIR)
        }
    }
}
