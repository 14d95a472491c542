import CPNG
import CTurboJPEG

/// A decoded image: `height` rows of `width` pixels of `channels` (1 or 3) interleaved bytes.
public struct DecodedImage: Equatable, Sendable {
    /// Pixels per row.
    public var width: Int
    /// Rows.
    public var height: Int
    /// 1 (grey) or 3 (RGB).
    public var channels: Int
    /// `height * width * channels` bytes, row-major, channels interleaved.
    public var pixels: [UInt8]

    /// An image from its parts; `pixels` holds `height * width * channels` bytes.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels, "DecodedImage: pixel count and size disagree")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }
}

/// Why an image could not be decoded (the caller names the file).
public struct ImageDecodeError: Error, Equatable, CustomStringConvertible {
    /// What the decoder said.
    public var message: String
    /// The message.
    public var description: String { message }
}

/// JPEG (libjpeg-turbo's TurboJPEG API) and PNG (libpng's simplified API) to pixels, told apart
/// by their first bytes. Both libraries report errors as return codes here, never by exiting.
public enum ImageDecoder {
    /// Largest image decoded, in pixels (a 16k x 16k photograph); a header claiming more is refused
    /// before anything is allocated.
    public static let maxPixels = 1 << 28

    /// Decodes `bytes` to `channels` (1: grey, 3: RGB) channels.
    public static func decode(_ bytes: [UInt8], channels: Int) throws -> DecodedImage {
        precondition(channels == 1 || channels == 3, "ImageDecoder: 1 or 3 channels")
        if bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF {
            return try decodeJPEG(bytes, channels: channels)
        }
        if bytes.count >= 8 && bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            return try decodePNG(bytes, channels: channels)
        }
        throw ImageDecodeError(message: "neither a JPEG nor a PNG file (its first bytes say otherwise)")
    }

    static func checkSize(_ width: Int, _ height: Int) throws {
        guard width > 0, height > 0, width <= maxPixels / height else {
            throw ImageDecodeError(message: "the header claims \(width)x\(height) pixels")
        }
    }

    static func decodeJPEG(_ bytes: [UInt8], channels: Int) throws -> DecodedImage {
        guard let handle = tjInitDecompress() else { throw ImageDecodeError(message: "cannot start a JPEG decoder") }
        defer { tjDestroy(handle) }
        func failure(_ what: String) -> ImageDecodeError {
            ImageDecodeError(message: "\(what): \(String(cString: tjGetErrorStr2(handle)))")
        }
        var width: Int32 = 0
        var height: Int32 = 0
        var subsampling: Int32 = 0
        var colorspace: Int32 = 0
        let header = bytes.withUnsafeBufferPointer { p in
            tjDecompressHeader3(handle, p.baseAddress, UInt(p.count), &width, &height, &subsampling, &colorspace)
        }
        guard header == 0 else { throw failure("bad JPEG header") }
        try checkSize(Int(width), Int(height))
        var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * channels)
        let format = channels == 1 ? TJPF_GRAY : TJPF_RGB
        let status = bytes.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(
                    handle, src.baseAddress, UInt(src.count), dst.baseAddress, width, 0, height,
                    Int32(format.rawValue), 0)
            }
        }
        // A warning (status -1 with TJERR_WARNING) still decodes the image; only an error stops.
        if status != 0 && tjGetErrorCode(handle) != Int32(TJERR_WARNING.rawValue) {
            throw failure("corrupt JPEG data")
        }
        return DecodedImage(width: Int(width), height: Int(height), channels: channels, pixels: pixels)
    }

    static func decodePNG(_ bytes: [UInt8], channels: Int) throws -> DecodedImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        func message() -> String {
            withUnsafeBytes(of: image.message) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
        }
        let begun = bytes.withUnsafeBufferPointer { p in
            png_image_begin_read_from_memory(&image, p.baseAddress, p.count)
        }
        guard begun != 0 else { throw ImageDecodeError(message: "bad PNG: \(message())") }
        defer { png_image_free(&image) }
        try checkSize(Int(image.width), Int(image.height))
        // Grey or RGB without alpha; a transparent image is composited onto black.
        image.format = channels == 1 ? UInt32(PNG_FORMAT_GRAY) : UInt32(PNG_FORMAT_RGB)
        let width = Int(image.width)
        let height = Int(image.height)
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        let finished = pixels.withUnsafeMutableBytes { dst in
            png_image_finish_read(&image, nil, dst.baseAddress, Int32(width * channels), nil)
        }
        guard finished != 0 else { throw ImageDecodeError(message: "corrupt PNG data: \(message())") }
        return DecodedImage(width: width, height: height, channels: channels, pixels: pixels)
    }
}

extension DecodedImage {
    /// The image scaled (bilinear, pixel centres aligned) so that it covers `height` x `width`,
    /// then cropped to it around the centre, as channel planes (CHW bytes): a photograph of any
    /// size becomes a network input without distortion.
    public func coverAndCrop(height th: Int, width tw: Int) -> [UInt8] {
        let scale = max(Double(th) / Double(height), Double(tw) / Double(width))
        let top = (Double(height) * scale - Double(th)) / 2
        let left = (Double(width) * scale - Double(tw)) / 2
        var out = [UInt8](repeating: 0, count: channels * th * tw)
        for y in 0..<th {
            let sy = min(max((Double(y) + top + 0.5) / scale - 0.5, 0), Double(height - 1))
            let y0 = Int(sy)
            let y1 = min(y0 + 1, height - 1)
            let fy = sy - Double(y0)
            for x in 0..<tw {
                let sx = min(max((Double(x) + left + 0.5) / scale - 0.5, 0), Double(width - 1))
                let x0 = Int(sx)
                let x1 = min(x0 + 1, width - 1)
                let fx = sx - Double(x0)
                for c in 0..<channels {
                    func p(_ yy: Int, _ xx: Int) -> Double { Double(pixels[(yy * width + xx) * channels + c]) }
                    let v =
                        (p(y0, x0) * (1 - fx) + p(y0, x1) * fx) * (1 - fy) + (p(y1, x0) * (1 - fx) + p(y1, x1) * fx)
                        * fy
                    out[(c * th + y) * tw + x] = UInt8(min(max(v.rounded(), 0), 255))
                }
            }
        }
        return out
    }
}
