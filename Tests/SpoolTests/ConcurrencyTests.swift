import Foundation
import XCTest

@testable import Spool

final class ConcurrencyTests: SpoolTestCase {
    func testConcurrentSubmitsAreUniqueAndEachIsClaimedExactlyOnce() throws {
        let count = 20
        let lock = NSLock()
        var submitted: [JobID] = []
        var errors: [Error] = []
        for i in 0..<count {
            try write(teacherBytes(100 + i, count: 50_000), to: sources.appendingPathComponent("t\(i).safetensors"))
        }
        DispatchQueue.concurrentPerform(iterations: count) { i in
            do {
                let id = try spool.submit(file: sources.appendingPathComponent("t\(i).safetensors"))
                lock.withLock { submitted.append(id) }
            } catch {
                lock.withLock { errors.append(error) }
            }
        }
        XCTAssertEqual(errors.count, 0, "\(errors)")
        XCTAssertEqual(Set(submitted).count, count)
        XCTAssertEqual(names(layout.incoming).count, count)
        XCTAssertEqual(names(layout.tmp), [])

        // Four claimers race over the same queue.
        var claimed: [ClaimedJob] = []
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do {
                while true {
                    let entries = try spool.scanIncoming().entries
                    if entries.isEmpty { break }
                    for entry in entries {
                        if let job = try spool.claim(entry) { lock.withLock { claimed.append(job) } }
                    }
                }
            } catch {
                lock.withLock { errors.append(error) }
            }
        }
        XCTAssertEqual(errors.count, 0, "\(errors)")
        XCTAssertEqual(claimed.count, count, "each teacher claimed exactly once")
        XCTAssertEqual(Set(claimed.map(\.id)).count, count)
        let expected = Set(try (0..<count).map { try sha256sum(sources.appendingPathComponent("t\($0).safetensors")) })
        XCTAssertEqual(Set(claimed.map(\.record.sha256)), expected)
        XCTAssertEqual(names(layout.incoming), [])
        XCTAssertEqual(Set(names(layout.work)), Set(claimed.map(\.id.rawValue)))
        XCTAssertEqual(try spool.recover().resumable.count, count)
    }
}
