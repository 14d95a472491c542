import Checkpoint
import Foundation
import TensorCore
import XCTest

/// Seeded mutations of valid plain and compressed checkpoints: the reader must never crash,
/// must answer each input with an archive or a `CheckpointError`, and must stay fast.
final class FuzzTests: XCTestCase {
    /// A seed file and the offsets where its structure changes (cutting there probes each
    /// parser state: inside the length prefix, header, each tensor, frame header, each block).
    struct Seed {
        let name: String
        let bytes: [UInt8]
        let boundaries: [Int]
        let compressed: Bool
        /// The plain safetensors content (the file itself when not compressed).
        let plain: [UInt8]
    }

    /// Caps small enough that no mutation can make a test allocate much.
    let limits = ReadLimits(maxContentSize: 1 << 20, maxWindowLog: 22)

    func seeds() throws -> [Seed] {
        var small = sampleCheckpoint(floats: 64, seed: 7)
        small["half"] = .raw(dtype: .f16, shape: [3], bytes: [0, 0x3C, 0, 0xC0, 0xFF, 0x7B])
        var large = sampleCheckpoint(floats: 2000, seed: 8)
        // Quantised values compress, so libzstd emits compressed (Huffman/FSE) blocks, not just
        // raw ones: the fuzzer then reaches the entropy decoders.
        var rng = SplitMix64(seed: 9)
        large["layer1.0.conv1.weight"] = .float32(
            Tensor(shape: [16, 16, 3, 3], data: (0..<2304).map { _ in Float(Int.random(in: -3...3, using: &rng)) / 4 }))
        large["ids"] = .int64(shape: [5], values: [0, 1, -1, .max, .min])
        var result: [Seed] = []
        for (name, archive) in [("small", small), ("large", large)] {
            let plain = archive.serialized()
            result.append(
                Seed(
                    name: "\(name).safetensors", bytes: plain, boundaries: plainBoundaries(plain), compressed: false,
                    plain: plain))
            for level in [3, 19] {
                let packed = try archive.serialized(compression: .zstd(level: level))
                result.append(
                    Seed(
                        name: "\(name)-\(level).safetensors.zst", bytes: packed, boundaries: frameBoundaries(packed),
                        compressed: true, plain: plain))
            }
        }
        return result
    }

    /// Prefix, header and every tensor's start and end in a plain file.
    func plainBoundaries(_ file: [UInt8]) -> [Int] {
        var n = 0
        for k in 0..<8 { n |= Int(file[k]) << (8 * k) }
        let dataStart = 8 + n
        var cuts: [Int] = [0, 1, 4, 7, 8, 9, dataStart - 1, dataStart, dataStart + 1, file.count - 1]
        let header = try! JSONSerialization.jsonObject(with: Data(file[8..<(8 + n)])) as! [String: Any]
        for (key, value) in header where key != "__metadata__" {
            let offsets = (value as! [String: Any])["data_offsets"] as! [Int]
            for offset in offsets { cuts += [dataStart + offset - 1, dataStart + offset, dataStart + offset + 1] }
        }
        // Sorted because dictionary order varies between runs, and the run must replay exactly.
        return Set(cuts.filter { $0 >= 0 && $0 < file.count }).sorted()
    }

    /// Frame header fields, every block header and payload, and the checksum of a zstd frame.
    func frameBoundaries(_ frame: [UInt8]) -> [Int] {
        let descriptor = frame[4]
        let singleSegment = descriptor & 0x20 != 0
        let sizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][Int(descriptor >> 6)]
        let dictBytes = [0, 1, 2, 4][Int(descriptor & 3)]
        var position = 5 + (singleSegment ? 0 : 1) + dictBytes + sizeBytes
        var cuts = Array(0...position)
        while position + 3 <= frame.count {
            let header = Int(frame[position]) | Int(frame[position + 1]) << 8 | Int(frame[position + 2]) << 16
            let size = header >> 3
            let type = (header >> 1) & 3
            cuts += [position + 1, position + 2, position + 3, position + 4]
            position += 3 + (type == 1 ? 1 : size)
            cuts += [position - 1, position]
            if header & 1 == 1 { break }
        }
        cuts += [frame.count - 4, frame.count - 3, frame.count - 1]
        return cuts.filter { $0 >= 0 && $0 < frame.count }
    }

    /// One random structural mutation of `bytes`.
    func mutate(_ bytes: [UInt8], boundaries: [Int], kind: Int, rng: inout SplitMix64) -> [UInt8] {
        var b = bytes
        switch kind {
        case 0:  // bit flips
            for _ in 0..<Int.random(in: 1...4, using: &rng) where !b.isEmpty {
                b[Int.random(in: 0..<b.count, using: &rng)] ^= 1 << UInt8.random(in: 0...7, using: &rng)
            }
        case 1:  // byte overwrites, biased towards the extremes parsers mishandle
            for _ in 0..<Int.random(in: 1...4, using: &rng) where !b.isEmpty {
                b[Int.random(in: 0..<b.count, using: &rng)] = [
                    0, 0xFF, 0x7F, 0x80, UInt8.random(in: 0...255, using: &rng),
                ].randomElement(using: &rng)!
            }
        case 2:  // truncation at a structural boundary
            b = Array(b.prefix(boundaries.randomElement(using: &rng)!))
        case 3:  // truncation anywhere
            b = Array(b.prefix(Int.random(in: 0..<b.count, using: &rng)))
        case 4:  // inserted bytes
            let at = Int.random(in: 0...b.count, using: &rng)
            b.insert(
                contentsOf: (0..<Int.random(in: 1...16, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng)
                }, at: at)
        case 5:  // deleted bytes
            let at = Int.random(in: 0..<b.count, using: &rng)
            b.removeSubrange(at..<Swift.min(b.count, at + Int.random(in: 1...16, using: &rng)))
        default:  // the 8-byte header length set to a huge or nearly right value
            let n = UInt64(b.count)
            let value = [
                UInt64.max, 1 << 63, UInt64(Int.max), n, n - 7, n - 8, 100_000_001,
                UInt64.random(in: 0...UInt64.max, using: &rng),
            ]
            .randomElement(using: &rng)!
            withUnsafeBytes(of: value.littleEndian) { for k in 0..<8 { b[k] = $0[k] } }
        }
        return b
    }

    func testMutatedCheckpointsAreParsedOrRejectedWithTypedErrors() throws {
        let seeds = try seeds()
        var rng = SplitMix64(seed: 0x5EED_F022)
        var parsed = 0
        var errors: [String: Int] = [:]
        let iterations = 12_000
        let start = Date()
        let peakBefore = peakResidentBytes()
        for i in 0..<iterations {
            let seed = seeds[i % seeds.count]
            var input: [UInt8]
            let kind = Int.random(in: 0...6, using: &rng)
            if seed.compressed && i % 3 == 0 {
                // Damage the content, then compress it validly: the safetensors parser sees the
                // damage through an intact zstd layer.
                let damaged = mutate(seed.plain, boundaries: plainBoundaries(seed.plain), kind: kind, rng: &rng)
                input = rawBlockFrame(damaged)
            } else {
                input = mutate(seed.bytes, boundaries: seed.boundaries, kind: kind, rng: &rng)
            }
            do {
                let archive = try SafeTensors(bytes: input, source: seed.name, limits: limits)
                parsed += 1
                // Whatever is accepted must be writable and read back the same.
                XCTAssertEqual(
                    try SafeTensors(bytes: archive.serialized()).serialized(), archive.serialized(), "iteration \(i)")
            } catch let error as CheckpointError {
                errors[caseName(error), default: 0] += 1
                XCTAssertTrue(error.description.contains(seed.name), "iteration \(i): \(error)")
            } catch {
                XCTFail("iteration \(i) (\(seed.name), mutation \(kind)): untyped error \(error)")
            }
        }
        let seconds = Date().timeIntervalSince(start)
        print(
            "fuzz: \(iterations) inputs in \(String(format: "%.2f", seconds)) s; parsed \(parsed); rejected "
                + "\(errors.sorted { $0.key < $1.key })"
        )
        XCTAssertLessThan(seconds, 60)
        // Bounded memory: no input may make the reader allocate what its header claims.
        let growth = peakResidentBytes() - peakBefore
        XCTAssertLessThan(growth, 256 << 20, "peak resident memory grew by \(growth) bytes during the fuzz run")
        XCTAssertGreaterThan(parsed, 0, "no mutation left a valid file (e.g. a flipped weight bit)")
        for expected in ["zstdChecksumMismatch", "zstdTruncated", "headerTooLarge", "invalidHeader"] {
            XCTAssertNotNil(errors[expected], "no input was rejected as \(expected)")
        }
    }

    /// The name of an error's case, for the summary.
    func caseName(_ error: CheckpointError) -> String {
        Mirror(reflecting: error).children.first?.label ?? "\(error)"
    }
}

/// The process's peak resident set size so far, in bytes (Linux reports `ru_maxrss` in KiB).
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
}
