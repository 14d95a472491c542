import CPNG
import CTurboJPEG
import Foundation

/// Image files for the image-folder tests, written with the same libraries rrmd reads them with.
public enum ImageFiles {
    /// A `width` x `height` RGB gradient (interleaved bytes), distinct per `seed`.
    public static func gradient(_ width: Int, _ height: Int, seed: Int = 0) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                out += [
                    UInt8((x * 7 + seed * 40) % 256), UInt8((y * 11 + seed * 13) % 256), UInt8((x + y + seed) % 256),
                ]
            }
        }
        return out
    }

    /// Writes `rgb` as a PNG file.
    public static func writePNG(_ rgb: [UInt8], _ width: Int, _ height: Int, to path: String) throws {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = UInt32(PNG_FORMAT_RGB)
        let ok = rgb.withUnsafeBytes { png_image_write_to_file(&image, path, 0, $0.baseAddress, Int32(width * 3), nil) }
        guard ok != 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
    }

    /// Writes `rgb` as a baseline JPEG file (4:4:4) at `quality`.
    public static func writeJPEG(
        _ rgb: [UInt8], _ width: Int, _ height: Int, to path: String, quality: Int32 = 95
    )
        throws
    {
        guard let handle = tjInitCompress() else { throw CocoaError(.fileWriteUnknown) }
        defer { tjDestroy(handle) }
        var buffer: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let status = rgb.withUnsafeBufferPointer { p in
            tjCompress2(
                handle, p.baseAddress, Int32(width), 0, Int32(height), Int32(TJPF_RGB.rawValue), &buffer, &size,
                Int32(TJSAMP_444.rawValue), quality, 0)
        }
        defer { tjFree(buffer) }
        guard status == 0, let buffer else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        try Data(bytes: buffer, count: Int(size)).write(to: URL(fileURLWithPath: path))
    }

    /// An image-folder dataset under `root`: `train/` and `test/` with a folder per class, each
    /// holding `perClass` images of odd sizes, PNG and JPEG alternating.
    public static func makeFolderDataset(
        root: String, classes: [String], perClass: (train: Int, test: Int)
    ) throws {
        for (split, count) in [("train", perClass.train), ("test", perClass.test)] {
            for (c, cls) in classes.enumerated() {
                let dir = "\(root)/\(split)/\(cls)"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                for i in 0..<count {
                    let (w, h) = (9 + (i % 5) * 4, 13 + c * 3)
                    let rgb = gradient(w, h, seed: i + 5 * c + (split == "test" ? 100 : 0))
                    if i % 2 == 0 {
                        try writePNG(rgb, w, h, to: "\(dir)/\(i).png")
                    } else {
                        try writeJPEG(rgb, w, h, to: "\(dir)/\(i).JPG")
                    }
                }
            }
        }
    }
}
