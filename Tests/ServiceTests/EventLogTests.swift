import Foundation
import XCTest

@testable import Service

final class EventLogTests: XCTestCase {
    /// 2026-12-02T21:49:00Z.
    let date = Date(timeIntervalSince1970: 1_796_248_140)

    func testTimestampIsUTCSeconds() {
        XCTAssertEqual(EventLog.timestamp(date), "2026-12-02T21:49:00Z")
        XCTAssertEqual(EventLog.timestamp(Date(timeIntervalSince1970: 0.999)), "1970-01-01T00:00:00Z")
    }

    func testReportLine() {
        let line = EventLog.formatLine(
            date: date, identifier: "rrmd", pid: 123, event: "report", priority: .notice,
            message: "resnet20 from teacher.safetensors: 81.0% clean, 42.5% robust",
            fields: [
                "robust_acc": "0.425", "clean_acc": "0.81", "arch": "resnet20",
                "job": "20261202-teacher", "epsilon": "8/255",
            ])
        XCTAssertEqual(
            line,
            "2026-12-02T21:49:00Z rrmd[123] report job=20261202-teacher arch=resnet20 clean_acc=0.81 "
                + "epsilon=8/255 robust_acc=0.425: resnet20 from teacher.safetensors: 81.0% clean, 42.5% robust")
    }

    func testWarningsAreMarkedAndAwkwardValuesQuoted() {
        let line = EventLog.formatLine(
            date: date, identifier: "rrmd", pid: 7, event: "job-failed", priority: .error,
            message: "first line\nsecond line",
            fields: ["path": "/var/spool/rrmd/incoming/my teacher", "reason": "a \"b\"=c", "empty": ""])
        XCTAssertEqual(
            line,
            "2026-12-02T21:49:00Z rrmd[7] ERR job-failed empty=\"\" path=\"/var/spool/rrmd/incoming/my teacher\" "
                + "reason=\"a \\\"b\\\"=c\": first line\\nsecond line")
        XCTAssertFalse(line.contains("\n"), "one event, one line")
        let info = EventLog.formatLine(
            date: date, identifier: "rrmd", pid: 7, event: "ready", priority: .info, message: "m", fields: [:])
        XCTAssertEqual(info, "2026-12-02T21:49:00Z rrmd[7] ready: m")
    }

    func testFieldNamesMapToJournalFields() {
        XCTAssertEqual(EventLog.journalFieldName(forKey: "job"), "RRMD_JOB")
        XCTAssertEqual(EventLog.journalFieldName(forKey: "clean_acc"), "RRMD_CLEAN_ACC")
        XCTAssertEqual(EventLog.journalFieldName(forKey: "ROBUST_ACC"), "RRMD_ROBUST_ACC")
        XCTAssertEqual(EventLog.journalFieldName(forKey: "epsilon"), "RRMD_EPSILON")
        XCTAssertEqual(EventLog.journalFieldName(forKey: "top5"), "RRMD_TOP5")
        for bad in [
            "", "clean-acc", "clean acc", "événement", "straße", "a=b", "event", "EVENT",
            String(repeating: "x", count: 60),
        ] {
            XCTAssertFalse(EventLog.isValidFieldKey(bad), bad)
        }
        XCTAssertTrue(EventLog.isValidFieldKey(String(repeating: "x", count: 59)), "RRMD_ + 59 = journald's 64")
    }

    func testJournalEntryFields() {
        let fields = EventLog.journalAssignments(
            identifier: "rrmd", event: "report", priority: .notice, message: "done",
            fields: ["arch": "resnet20", "job": "j1", "clean_acc": "0.81"])
        XCTAssertEqual(
            fields,
            [
                "MESSAGE=done", "PRIORITY=5", "SYSLOG_IDENTIFIER=rrmd", "RRMD_EVENT=report",
                "RRMD_JOB=j1", "RRMD_ARCH=resnet20", "RRMD_CLEAN_ACC=0.81",
            ])
    }

    func testJournaldDetection() throws {
        var pipeFDs: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&pipeFDs), 0)
        defer {
            close(pipeFDs[0])
            close(pipeFDs[1])
        }
        var st = stat()
        XCTAssertEqual(fstat(pipeFDs[1], &st), 0)
        let matching = "\(st.st_dev):\(st.st_ino)"
        XCTAssertTrue(
            EventLog.runsUnderJournald(environment: ["JOURNAL_STREAM": matching], stderrDescriptor: pipeFDs[1]))
        XCTAssertFalse(
            EventLog.runsUnderJournald(
                environment: ["JOURNAL_STREAM": "1:2", "INVOCATION_ID": "abc"],
                stderrDescriptor: pipeFDs[1]),
            "stderr redirected away from the journal stream: keep writing lines there")
        XCTAssertTrue(EventLog.runsUnderJournald(environment: ["INVOCATION_ID": "abc"], stderrDescriptor: pipeFDs[1]))
        XCTAssertFalse(EventLog.runsUnderJournald(environment: [:], stderrDescriptor: pipeFDs[1]))
        XCTAssertEqual(EventLog.Destination.automatic(environment: [:]), .stderr)
    }

    func testConcurrentLogsGiveWholeLines() throws {
        let path = NSTemporaryDirectory() + "rrmd-eventlog-\(getpid())-\(UUID().uuidString).log"
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_APPEND, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { unlink(path) }
        let log = EventLog(identifier: "rrmd-test", destination: .fileDescriptor(fd))
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for i in 0..<50 {
                log.log(
                    event: "progress", message: "worker \(worker) step \(i)",
                    fields: ["job": "j\(worker)", "step": "\(i)"])
            }
        }
        close(fd)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        XCTAssertEqual(lines.count, 400)
        let pattern = try NSRegularExpression(
            pattern:
                #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ rrmd-test\[\d+\] progress job=j(\d) step=(\d+): worker \1 step \2$"#)
        for line in lines {
            let s = String(line)
            XCTAssertNotNil(pattern.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)), s)
        }
    }
}
