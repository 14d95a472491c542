import Data
import Foundation
import TensorCore
import TestSupport
import XCTest

/// Image-folder datasets on PNG and JPEG files the tests write: decoding, the cover-and-crop
/// resize, both layouts, the decoded cache, and a corrupt file named in the error.
final class ImageFolderTests: XCTestCase {
    func gradient(_ width: Int, _ height: Int, seed: Int = 0) -> [UInt8] {
        ImageFiles.gradient(width, height, seed: seed)
    }

    func writePNG(_ rgb: [UInt8], _ width: Int, _ height: Int, to path: String) throws {
        try ImageFiles.writePNG(rgb, width, height, to: path)
    }

    func writeJPEG(_ rgb: [UInt8], _ width: Int, _ height: Int, to path: String) throws {
        try ImageFiles.writeJPEG(rgb, width, height, to: path)
    }

    func testDecodesPNGExactlyAndJPEGClosely() throws {
        let dir = try makeTempDir(self)
        let rgb = gradient(37, 23)
        try writePNG(rgb, 37, 23, to: dir + "/a.png")
        try writeJPEG(rgb, 37, 23, to: dir + "/a.jpg")
        let png = try ImageDecoder.decode(
            try Array(Data(contentsOf: URL(fileURLWithPath: dir + "/a.png"))), channels: 3)
        XCTAssertEqual(png, DecodedImage(width: 37, height: 23, channels: 3, pixels: rgb))
        let jpg = try ImageDecoder.decode(
            try Array(Data(contentsOf: URL(fileURLWithPath: dir + "/a.jpg"))), channels: 3)
        XCTAssertEqual([jpg.width, jpg.height, jpg.channels], [37, 23, 3])
        let error = zip(jpg.pixels, rgb).map { abs(Int($0) - Int($1)) }.reduce(0, +) / rgb.count
        XCTAssertLessThanOrEqual(error, 4, "JPEG at quality 95 stays close to the original")
        let grey = try ImageDecoder.decode(
            try Array(Data(contentsOf: URL(fileURLWithPath: dir + "/a.png"))), channels: 1)
        XCTAssertEqual(grey.pixels.count, 37 * 23)
        XCTAssertThrowsError(try ImageDecoder.decode([0xFF, 0xD8, 0xFF, 0, 1, 2, 3], channels: 3))
        XCTAssertThrowsError(try ImageDecoder.decode(Array("not an image".utf8), channels: 3))
    }

    func testCoverAndCropKeepsTheCentreWithoutDistortion() {
        // 4 x 2: two black columns, then two white ones. Covering 2 x 2 needs no scaling; the
        // centre crop keeps columns 1 and 2: black, then white, in every channel.
        var pixels = [UInt8]()
        for _ in 0..<2 { for x in 0..<4 { pixels += Array(repeating: x < 2 ? 0 : 255, count: 3) } }
        let image = DecodedImage(width: 4, height: 2, channels: 3, pixels: pixels)
        XCTAssertEqual(
            image.coverAndCrop(height: 2, width: 2), Array(repeating: [0, 255, 0, 255], count: 3).flatMap { $0 })
        // A constant image stays constant at any size.
        let flat = DecodedImage(width: 5, height: 3, channels: 1, pixels: Array(repeating: 77, count: 15))
        XCTAssertEqual(flat.coverAndCrop(height: 8, width: 8), Array(repeating: 77, count: 64))
    }

    func testTrainTestFoldersDecodeOnceAndAreCached() throws {
        let root = try makeTempDir(self)
        for (split, count) in [("train", 3), ("test", 2)] {
            for (c, cls) in ["cat", "dog"].enumerated() {
                let dir = "\(root)/\(split)/\(cls)"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                for i in 0..<count {
                    let (w, h) = (9 + i * 4, 13 + c * 3)  // odd sizes, portrait and landscape
                    let rgb = gradient(w, h, seed: i + 5 * c)
                    if i % 2 == 0 {
                        try writePNG(rgb, w, h, to: "\(dir)/\(i).png")
                    } else {
                        try writeJPEG(rgb, w, h, to: "\(dir)/\(i).JPG")
                    }
                }
                try "ignored".write(toFile: "\(dir)/notes.txt", atomically: true, encoding: .utf8)
            }
        }
        let first = try ImageFolder.load(root: root, name: "pets", channels: 3, height: 8, width: 8)
        XCTAssertEqual(first.classes, ["cat", "dog"])
        XCTAssertEqual(first.train.count, 6)
        XCTAssertEqual(first.test.count, 4)
        XCTAssertEqual(first.train.labels, [0, 0, 0, 1, 1, 1])
        XCTAssertEqual(first.train.numClasses, 2)
        XCTAssertEqual(first.train.images.shape, [6, 3, 8, 8])
        XCTAssertTrue(first.train.images.array.allSatisfy { $0 >= 0 && $0 <= 1 })
        let caches = try FileManager.default.contentsOfDirectory(atPath: root + "/.rrmd-cache")
        XCTAssertEqual(caches.count, 2, "\(caches)")
        // The second load reads the cache and gives the same tensors.
        let second = try ImageFolder.load(root: root, name: "pets", channels: 3, height: 8, width: 8)
        XCTAssertEqual(second.train.images.array, first.train.images.array)
        XCTAssertEqual(second.test.labels, first.test.labels)
        // Another size is another cache; a changed image invalidates the old one.
        _ = try ImageFolder.load(root: root, name: "pets", channels: 1, height: 4, width: 4)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/.rrmd-cache").count, 4)
        try writePNG(gradient(9, 13, seed: 99), 9, 13, to: "\(root)/train/cat/0.png")
        let changed = try ImageFolder.load(root: root, name: "pets", channels: 3, height: 8, width: 8)
        XCTAssertNotEqual(changed.train.images.array, first.train.images.array)
    }

    func testClassFoldersSplitByPositionAndACorruptFileIsNamed() throws {
        let root = try makeTempDir(self)
        for cls in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(cls)", withIntermediateDirectories: true)
            for i in 0..<5 { try writePNG(gradient(6, 7, seed: i), 6, 7, to: "\(root)/\(cls)/\(i).png") }
        }
        let data = try ImageFolder.load(root: root, name: "ab", channels: 3, height: 6, width: 6, testFraction: 0.2)
        XCTAssertEqual(data.train.count, 8)
        XCTAssertEqual(data.test.count, 2)
        XCTAssertEqual(data.test.labels, [0, 1])
        let bad = "\(root)/b/9.jpg"
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4, 5]).write(to: URL(fileURLWithPath: bad))
        XCTAssertThrowsError(try ImageFolder.load(root: root, name: "ab", channels: 3, height: 6, width: 6)) { error in
            guard case .badImage(let path, _) = error as? DataError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, bad)
            XCTAssertTrue("\(error)".contains("Replace or remove the file"), "\(error)")
        }
        XCTAssertThrowsError(try ImageFolder.load(root: root + "/a", name: "x", channels: 3, height: 6, width: 6)) {
            guard case .badFolder = $0 as? DataError else { return XCTFail("\($0)") }
        }
    }
}
