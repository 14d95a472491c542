import FileSystem
import Foundation
import TensorCore

/// A dataset of image files in class folders: `ROOT/train/<class>/*.{jpg,jpeg,png}` and
/// `ROOT/test/<class>/...`, or `ROOT/<class>/...` with the last `testFraction` of each class's
/// files (in name order) as the test split. Classes are the folder names in sorted order. Every
/// image is decoded (libjpeg-turbo, libpng), scaled to cover the requested size and cropped
/// around its centre; the result is cached once per split and size as bytes in
/// `ROOT/.rrmd-cache/` (written with fsync and rename), so that later epochs and jobs read it at
/// memory speed. The cache is used only while the folder's listing (names, sizes, modification
/// times) is unchanged; a folder that cannot be written to is simply not cached.
public enum ImageFolder {
    /// File extensions read (case-insensitive); other files are ignored.
    public static let extensions: Set<String> = ["jpg", "jpeg", "png"]

    /// The classes (sorted folder names) of the dataset at `root`.
    public static func classes(root: String) throws -> [String] {
        try layout(root: root, testFraction: 0.2).classes
    }

    /// Loads both splits as `channels` x `height` x `width` images in [0, 1].
    public static func load(
        root: String, name: String, channels: Int, height: Int, width: Int, testFraction: Double = 0.2,
        limit: Int? = nil
    ) throws -> (train: Dataset, test: Dataset, classes: [String]) {
        precondition(channels == 1 || channels == 3, "ImageFolder: 1 or 3 channels")
        let plan = try layout(root: root, testFraction: testFraction)
        func split(_ files: [(String, Int32)], _ tag: String) throws -> Dataset {
            let chosen = Array(files.prefix(limit ?? Int.max))
            let (bytes, labels) = try decodeCached(
                chosen, root: root, tag: tag, channels: channels, height: height, width: width)
            var images = Tensor(uninitializedShape: [labels.count, channels, height, width])
            let n = bytes.count
            let table = IDX.scaleTable(255)  // the byte-to-[0, 1] map the other readers use
            images.withUnsafeMutablePointer { p in for i in 0..<n { p[i] = table[Int(bytes[i])] } }
            return Dataset(
                name: name, images: images, labels: labels, numClasses: plan.classes.count,
                allowsHorizontalFlip: true)
        }
        return (try split(plan.train, "train"), try split(plan.test, "test"), plan.classes)
    }

    /// The files of each split with their labels, in a fixed order (class, then file name).
    static func layout(
        root: String, testFraction: Double
    ) throws -> (classes: [String], train: [(String, Int32)], test: [(String, Int32)]) {
        let fm = FileManager.default
        func folders(_ dir: String) -> [String] {
            ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).filter { name in
                var isDir: ObjCBool = false
                return !name.hasPrefix(".") && fm.fileExists(atPath: dir + "/" + name, isDirectory: &isDir)
                    && isDir.boolValue
            }.sorted()
        }
        func images(_ dir: String) -> [String] {
            ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).filter {
                !$0.hasPrefix(".") && extensions.contains(($0 as NSString).pathExtension.lowercased())
            }.sorted().map { dir + "/" + $0 }
        }
        guard DatasetCatalog.isDirectory(root) else {
            throw DataError.badFolder(path: root, reason: "no such directory")
        }
        let top = folders(root)
        if top.contains("train") && top.contains("test") {
            let classes = folders(root + "/train")
            guard !classes.isEmpty else { throw DataError.badFolder(path: root + "/train", reason: "no class folders") }
            let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, Int32($0)) })
            var train: [(String, Int32)] = []
            var test: [(String, Int32)] = []
            for c in classes { train += images(root + "/train/" + c).map { ($0, index[c]!) } }
            for c in folders(root + "/test") {
                guard let label = index[c] else {
                    throw DataError.badFolder(path: root + "/test/" + c, reason: "a test class the training set lacks")
                }
                test += images(root + "/test/" + c).map { ($0, label) }
            }
            guard !train.isEmpty, !test.isEmpty else {
                throw DataError.badFolder(path: root, reason: "a split without any .jpg, .jpeg or .png file")
            }
            return (classes, train, test)
        }
        guard top.count >= 2 else { throw DataError.badFolder(path: root, reason: "fewer than two class folders") }
        var train: [(String, Int32)] = []
        var test: [(String, Int32)] = []
        for (label, c) in top.enumerated() {
            let files = images(root + "/" + c)
            let held = Int((Double(files.count) * testFraction).rounded())
            train += files.prefix(files.count - held).map { ($0, Int32(label)) }
            test += files.suffix(held).map { ($0, Int32(label)) }
        }
        guard !train.isEmpty, !test.isEmpty else {
            throw DataError.badFolder(path: root, reason: "too few images to hold some out for testing")
        }
        return (top, train, test)
    }

    /// The decoded bytes (CHW per image) and labels of `files`, from the cache when it is current.
    static func decodeCached(
        _ files: [(String, Int32)], root: String, tag: String, channels: Int, height: Int, width: Int
    ) throws -> ([UInt8], [Int32]) {
        let fm = FileManager.default
        var manifest = "rrmd image cache 1 \(channels)x\(height)x\(width)\n"
        for (path, label) in files {
            let attributes = try? fm.attributesOfItem(atPath: path)
            let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            manifest += "\(label)\t\(size)\t\(modified)\t\(path)\n"
        }
        var hash = SHA256()
        hash.update(Array(manifest.utf8))
        let key = String(hash.finalizeHex().prefix(16))
        let cache = "\(root)/.rrmd-cache/\(tag)-\(channels)x\(height)x\(width)-\(key).bin"
        let per = channels * height * width
        if let bytes = try? readWholeFile(cache, limit: UInt64(files.count * (per + 4)), regularOnly: true),
            bytes.count == files.count * (per + 4)
        {
            let labels = (0..<files.count).map { i -> Int32 in
                var v: UInt32 = 0
                for b in 0..<4 { v |= UInt32(bytes[4 * i + b]) << (8 * UInt32(b)) }
                return Int32(bitPattern: v)
            }
            return (Array(bytes[(4 * files.count)...]), labels)
        }
        var pixels = [UInt8]()
        pixels.reserveCapacity(files.count * per)
        for (path, _) in files {
            let data: [UInt8]
            do {
                data = try readWholeFile(path, limit: 1 << 30, regularOnly: true)
            } catch {
                throw DataError.unreadable(path: path, reason: "\(error)")
            }
            do {
                pixels += try ImageDecoder.decode(data, channels: channels).coverAndCrop(height: height, width: width)
            } catch let e as ImageDecodeError {
                throw DataError.badImage(path: path, reason: e.message)
            }
        }
        let labels = files.map(\.1)
        var record = [UInt8]()
        record.reserveCapacity(files.count * (per + 4))
        for l in labels { withUnsafeBytes(of: UInt32(bitPattern: l).littleEndian) { record += $0 } }
        record += pixels
        // The cache is an optimisation: a read-only data directory is served without one.
        if (try? fm.createDirectory(atPath: root + "/.rrmd-cache", withIntermediateDirectories: true)) != nil {
            try? writeAtomically(record, toFile: cache)
        }
        return (pixels, labels)
    }
}
