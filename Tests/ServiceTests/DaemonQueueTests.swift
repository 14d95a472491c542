import Checkpoint
import Data
import Evaluation
import FileSystem
import Foundation
import ModelIO
import Models
import Spool
import TestSupport
import Training
import XCTest

@testable import Service

/// The queue under pressure: restart storms, many submissions at once, hostile inputs, and
/// problems that must be reported once and retried later rather than at every turn.
final class DaemonQueueTests: DaemonTestCase {
    /// A job the daemon keeps restarting during is failed as the likely cause, not retried forever.
    func testAJobThatKeepsKillingTheDaemonIsFailed() throws {
        let cfg = try config(students: ["cnn-small"], epochs: 30)
        let job = try rrmd(["submit", "--config", cfg, try teacherFile()]).output.trimmingCharacters(
            in: .whitespacesAndNewlines)
        let first = try start(["serve", "--config", cfg])
        let record = root.appendingPathComponent("spool/work/\(job)/job.json")
        // Killed while running the job (its run marker is there), so the death counts against it.
        let marker = root.appendingPathComponent("spool/work/\(job)/.running")
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: marker.path) && Date() < deadline { usleep(5_000) }
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        // As if it had been killed ten times already.
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: record)) as! [String: Any]
        json["attempts"] = 10
        try JSONSerialization.data(withJSONObject: json).write(to: record)
        let served = try rrmd(["serve", "--config", cfg, "--once"])
        XCTAssertEqual(served.status, 0, served.output)
        XCTAssertEqual(jobs(in: "failed"), [job], served.output)
        let error =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: root.appendingPathComponent("spool/failed/\(job)/error.json"))) as! [String: Any]
        XCTAssertEqual(error["kind"] as? String, "crashed")
    }

    /// A restart storm (issue 14): good teachers and hostile files queued at once, the daemon
    /// SIGKILLed a dozen times at seeded random moments, then left to drain. Every good teacher
    /// ends in done/ exactly once, every hostile file in failed/ for its own reason, none as
    /// `crashed`, and nothing is left behind: a restart counts against the job being run only.
    func testRestartStormLosesNothingAndBlamesNoWaitingJob() throws {
        let cfg = try config()
        let spool = root.appendingPathComponent("spool")
        var good: [String] = []
        for i in 0..<10 {
            let submitted = try rrmd([
                "submit", "--config", cfg, try teacherFile(seed: UInt64(200 + i), name: "good\(i).safetensors"),
            ])
            XCTAssertEqual(submitted.status, 0, submitted.output)
            good.append(submitted.output.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        // Hostile inputs dropped in by hand, each with the kind of failure it must end with.
        let incoming = spool.appendingPathComponent("incoming")
        var hostile: [String: String] = [:]  // original name -> expected kind
        try Data().write(to: incoming.appendingPathComponent("empty.safetensors"))
        hostile["empty.safetensors"] = "empty"
        try Data(repeating: 0x7b, count: 4096).write(to: incoming.appendingPathComponent("garbage.safetensors"))
        hostile["garbage.safetensors"] = "bad-checkpoint"
        let valid = try Data(contentsOf: URL(fileURLWithPath: try teacherFile(seed: 999, name: "whole.safetensors")))
        try valid.prefix(valid.count / 2).write(to: incoming.appendingPathComponent("truncated.safetensors"))
        hostile["truncated.safetensors"] = "bad-checkpoint"
        XCTAssertEqual(symlink("/etc/passwd", incoming.appendingPathComponent("link.safetensors").path), 0)
        hostile["incoming/link.safetensors"] = SpoolFailure.specialFileKind  // refused where it lies, unopened

        var seed: UInt64 = 14  // a fixed linear congruential sequence: the same moments every run
        for _ in 0..<12 {
            let p = try start(["serve", "--config", cfg])
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            // 0.3 to 2.5 s: sometimes before recovery ends, sometimes mid-job or mid-claim.
            usleep(UInt32(300_000 + Int(seed >> 33) % 2_200_000))
            kill(p.process.processIdentifier, SIGKILL)
            p.process.waitUntilExit()
        }
        let drained = try rrmd(["serve", "--config", cfg, "--once"], timeout: 300)
        XCTAssertEqual(drained.status, 0, drained.output)

        XCTAssertEqual(jobs(in: "incoming"), [], drained.output)
        XCTAssertEqual(jobs(in: "work"), [], drained.output)
        var doneSHA: [String] = []
        for job in jobs(in: "done") {
            let record =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: spool.appendingPathComponent("done/\(job)/job.json"))) as! [String: Any]
            doneSHA.append(record["sha256"] as! String)
        }
        XCTAssertEqual(Set(jobs(in: "done")), Set(good), "every good teacher done, under its own id")
        XCTAssertEqual(doneSHA.count, Set(doneSHA).count, "nothing done twice")
        var failedKinds: [String: String] = [:]
        for job in jobs(in: "failed") {
            let dir = spool.appendingPathComponent("failed/\(job)")
            let error =
                try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("error.json")))
                as! [String: Any]
            // error.json names the input as it arrived ("where") and why it failed ("kind").
            failedKinds[error["where"] as? String ?? job] = error["kind"] as? String ?? "?"
        }
        XCTAssertFalse(failedKinds.values.contains("crashed"), "\(failedKinds)")
        XCTAssertEqual(failedKinds.count, hostile.count, "\(failedKinds)")
        for (name, kind) in hostile { XCTAssertEqual(failedKinds[name], kind, "\(name): \(failedKinds)") }
    }

    /// Bad inputs end in failed/ with a reason, and the daemon goes on to serve a good one.
    func testBadInputsFailAndTheDaemonKeepsServing() throws {
        let cfg = try config()
        let good = try teacherFile()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let spool = root.appendingPathComponent("spool")
        _ = try rrmd(["status", "--config", cfg])
        try FileManager.default.createDirectory(
            at: spool.appendingPathComponent("incoming"), withIntermediateDirectories: true)
        func drop(_ name: String, _ data: Data) throws {
            try data.write(to: spool.appendingPathComponent("incoming/\(name)"))
        }
        try drop("truncated.safetensors", bytes.prefix(bytes.count / 2))
        var flipped = bytes
        flipped[12] ^= 0x40  // inside the JSON header
        try drop("bitflip.safetensors", flipped)
        try drop("empty.safetensors", Data())
        try drop("notes.safetensors", Data("not a checkpoint".utf8))
        // A decompression bomb: a tiny zstd frame that claims to hold a terabyte.
        try drop("bomb.safetensors.zst", Data(zeroBombFrame(blocks: 8, contentSize: 1 << 40)))
        // The right format and metadata but an architecture the registry lacks.
        var meta = ModelMetadata(model: Self.teacher.network, dataset: "digits", trainedBy: "natural", seed: 1)
            .dictionary
        meta["rrm.arch"] = "transformer"
        try drop(
            "wrongarch.safetensors",
            Data(try SafeTensors(Self.teacher.network.stateTensors(), metadata: meta).serialized()))
        XCTAssertEqual(symlink("/etc/passwd", spool.appendingPathComponent("incoming/link.safetensors").path), 0)
        XCTAssertEqual(mkfifo(spool.appendingPathComponent("incoming/pipe.safetensors").path, 0o644), 0)
        _ = try rrmd(["submit", "--config", cfg, good])

        let served = try rrmd(["serve", "--config", cfg, "--once"])
        XCTAssertEqual(served.status, 0, served.output)
        XCTAssertEqual(jobs(in: "done").count, 1, served.output)
        let failed = jobs(in: "failed")
        XCTAssertEqual(failed.count, 8, "\(failed)\n\(served.output)")
        for job in failed {
            let error =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: spool.appendingPathComponent("failed/\(job)/error.json"))) as! [String: Any]
            for key in ["what", "where", "what_to_do", "kind"] {
                XCTAssertFalse((error[key] as? String ?? "").isEmpty, "\(job) error.json lacks \(key)")
            }
        }
    }
}

/// A zstd frame of `blocks` RLE blocks of 128 KiB zeros (4 bytes each) whose header declares
/// `contentSize`: a decompression bomb made without any compressor.
private func zeroBombFrame(blocks: Int, contentSize: UInt64) -> [UInt8] {
    // Descriptor 0xC0: an 8-byte content size, no single-segment flag, so a window byte follows.
    var out: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0xC0, UInt8((20 - 10) << 3)]
    withUnsafeBytes(of: contentSize.littleEndian) { out += $0 }
    for b in 0..<blocks {
        let header = UInt32((128 << 10) << 3) | (1 << 1) | (b == blocks - 1 ? 1 : 0)
        out += [UInt8(header & 0xFF), UInt8((header >> 8) & 0xFF), UInt8(header >> 16), 0]
    }
    return out
}
