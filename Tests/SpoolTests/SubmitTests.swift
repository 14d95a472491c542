import FileSystem
import Foundation
import XCTest

@testable import Spool

#if canImport(Glibc)
import Glibc
#endif

final class SubmitTests: SpoolTestCase {
    func testSubmitLandsInIncomingWithTheIdInTheNameAndNoPartLeft() throws {
        let bytes = teacherBytes(1, count: 3 << 20)  // more than one copy buffer
        let id = try submit(bytes, name: "robust resnet.safetensors.zst")
        XCTAssertEqual(names(layout.incoming), ["\(id)--robust resnet.safetensors.zst"])
        XCTAssertEqual(names(layout.tmp), [])
        XCTAssertEqual(
            [UInt8](
                try Data(contentsOf: layout.incoming.appendingPathComponent("\(id)--robust resnet.safetensors.zst"))),
            bytes)
        XCTAssertLessThan(abs(id.date.timeIntervalSinceNow), 5)
        let entry = try XCTUnwrap(spool.scanIncoming().entries.first)
        XCTAssertEqual(entry.job, id)
        XCTAssertEqual(entry.originalName, "robust resnet.safetensors.zst")
        XCTAssertEqual(entry.size, UInt64(bytes.count))
        let job = try XCTUnwrap(spool.claim(entry))
        XCTAssertEqual(job.record.sha256, try sha256sum(job.teacher), "hashed across several reads")
        XCTAssertEqual(job.record.size, UInt64(bytes.count))
    }

    func testSubmitCreatesAMissingSpool() throws {
        let fresh = Spool(root: base.appendingPathComponent("new-spool"))
        let file = sources.appendingPathComponent("t.safetensors")
        try write([1, 2, 3], to: file)
        let id = try fresh.submit(file: file)
        XCTAssertEqual(names(fresh.layout.incoming), ["\(id)--t.safetensors"])
    }

    func testSubmitFollowsALinkGivenOnTheCommandLine() throws {
        let target = sources.appendingPathComponent("real.safetensors")
        try write([9, 9, 9], to: target)
        let link = sources.appendingPathComponent("latest.safetensors")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        let id = try spool.submit(file: link)
        let landed = layout.incoming.appendingPathComponent("\(id)--latest.safetensors")
        XCTAssertEqual(kind(landed), .regular)
        XCTAssertEqual([UInt8](try Data(contentsOf: landed)), [9, 9, 9])
    }

    func testSubmitRefusesWhatIsNotARegularFileWithoutBlocking() throws {
        let fifo = sources.appendingPathComponent("pipe.safetensors")
        XCTAssertEqual(mkfifo(fifo.path, 0o600), 0)
        finishes(within: 5, unblock: { _ = open(fifo.path, O_WRONLY | O_NONBLOCK) }) {
            XCTAssertThrowsError(try self.spool.submit(file: fifo)) { error in
                XCTAssertEqual(error as? SpoolError, .notRegularFile(path: fifo.path, kind: "a FIFO (named pipe)"))
            }
        }
        XCTAssertThrowsError(try spool.submit(file: sources)) { error in
            guard case .notRegularFile? = error as? SpoolError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try spool.submit(file: sources.appendingPathComponent("missing.safetensors"))) { error in
            XCTAssertEqual((error as? FileSystemError)?.errno, ENOENT)
            XCTAssertTrue("\(error)".contains("missing.safetensors"))
        }
        XCTAssertEqual(names(layout.incoming), [])
        XCTAssertEqual(names(layout.tmp), [])
    }

    func testSubmitRefusesNamesTheWatcherWouldIgnore() throws {
        for name in ["upload.part", "copy.tmp"] {
            XCTAssertThrowsError(try submit([1], name: name)) { error in
                guard case .unusableName? = error as? SpoolError else { return XCTFail("\(error)") }
                XCTAssertTrue("\(error)".contains("rename the file"))
            }
        }
        XCTAssertEqual(names(layout.incoming), [])
        // A dotfile is fine: the id in front makes the incoming name visible.
        let id = try submit([1], name: ".hidden.safetensors")
        XCTAssertEqual(try spool.scanIncoming().entries.map(\.job), [id])
    }
}
