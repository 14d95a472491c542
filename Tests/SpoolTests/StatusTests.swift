import Foundation
import XCTest

@testable import Spool

final class StatusTests: SpoolTestCase {
    func testStatusRoundTrip() throws {
        XCTAssertNil(try spool.readStatus())
        let id = JobID()
        var status = SpoolStatus(
            state: .working, pid: 4242,
            current: .init(
                id: id, teacher: "robust.safetensors.zst", arch: "resnet20", phase: .training,
                epoch: 3, epochs: 48, step: 17, steps: 390, accuracy: 0.5, etaSeconds: 1234.5),
            queue: ["\(JobID())--next.safetensors"])
        status.remember(
            .init(job: JobID(), outcome: .done, time: Records.now(), summary: "resnet20: clean 0.81 robust 0.42"))
        try spool.writeStatus(status)
        let read = try XCTUnwrap(spool.readStatus())
        XCTAssertLessThan(abs(read.updated.timeIntervalSinceNow), 5, "writeStatus stamps the time")
        status.updated = read.updated
        XCTAssertEqual(read, status)

        let json = try jsonObject(layout.statusFile)
        XCTAssertEqual(Set(json.keys), ["state", "pid", "updated", "current", "queue", "recent"])
        XCTAssertEqual(json["state"] as? String, "working")
        let current = try XCTUnwrap(json["current"] as? [String: Any])
        XCTAssertEqual(current["eta_seconds"] as? Double, 1234.5)
        XCTAssertEqual(current["phase"] as? String, "training")
        XCTAssertEqual(names(layout.root).filter { $0.hasPrefix(".") }, [], "no temporary left")
    }

    func testNonFiniteProgressIsLeftOutAndRecentIsBounded() throws {
        var status = SpoolStatus(
            state: .idle, pid: 1,
            current: .init(id: JobID(), teacher: "t", phase: .evaluating, accuracy: .nan, etaSeconds: .infinity))
        for i in 0..<25 {
            status.remember(.init(job: JobID(), outcome: .failed, time: Records.now(), summary: "job \(i)"))
        }
        XCTAssertEqual(status.recent.count, SpoolStatus.recentLimit)
        XCTAssertEqual(status.recent.first?.summary, "job 24", "newest first")
        try spool.writeStatus(status)
        let read = try XCTUnwrap(spool.readStatus())
        XCTAssertNil(read.current?.etaSeconds)
        XCTAssertNil(read.current?.accuracy)
        XCTAssertEqual(read.recent.count, 20)
    }

    func testDamagedStatusIsATypedError() throws {
        try write(Array("{\"state\": \"dancing\"}".utf8), to: layout.statusFile)
        XCTAssertThrowsError(try spool.readStatus()) { error in
            guard case .damagedRecord(let path, _)? = error as? SpoolError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, layout.statusFile.path)
        }
    }

    func testSnapshotShowsTheDirectories() throws {
        let published = try submitAndClaim([1], name: "p.safetensors")
        try spool.publish(published)
        let failed = try submitAndClaim([2], name: "f.safetensors")
        try spool.fail(failed, error: SpoolFailure(kind: "k", what: "w", whereText: "x", whatToDo: "y"))
        let working = try submitAndClaim([3], name: "w.safetensors")
        let waiting = try submit([4], name: "q.safetensors")
        XCTAssertEqual(
            try spool.snapshot(),
            SpoolSnapshot(
                incoming: ["\(waiting)--q.safetensors"], work: [working.id.rawValue],
                done: [published.id.rawValue], failed: [failed.id.rawValue]))
        XCTAssertEqual(
            try Spool(root: base.appendingPathComponent("nowhere")).snapshot(),
            SpoolSnapshot(incoming: [], work: [], done: [], failed: []))
    }
}
