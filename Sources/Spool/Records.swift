import FileSystem
import Foundation

/// How the spool's JSON records are written and read: sorted keys and indentation so an operator
/// can `cat` and diff them, ISO 8601 UTC times, and never a half-written file.
enum Records {
    /// Writes `value` as JSON to `path` atomically (temp file, fsync, rename, fsync directory).
    static func write<T: Encodable>(_ value: T, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        var bytes = [UInt8](try encoder.encode(value))
        bytes.append(0x0A)
        try writeAtomically(bytes, toFile: path)
    }

    /// The record at `path`, or nil when there is none; a file that is not such a record is a
    /// `SpoolError.damagedRecord`.
    static func read<T: Decodable>(_ type: T.Type, from path: String) throws -> T? {
        guard let bytes = try FS.readSmallFile(path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            return try decoder.decode(T.self, from: Data(bytes))
        } catch {
            throw SpoolError.damagedRecord(path: path, reason: Self.explain(error))
        }
    }

    /// A decoding error in one line, naming the key where it can.
    private static func explain(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "key '\(key.stringValue)' is missing"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "wrong value at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.dataCorrupted(let context):
            let at = context.codingPath.map(\.stringValue).joined(separator: ".")
            return at.isEmpty ? "not valid JSON" : "invalid value at '\(at)': \(context.debugDescription)"
        default: return "\(error)"
        }
    }

    /// Now, to the second: records keep whole seconds, so a time read back equals the one written.
    static func now() -> Date {
        Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
    }
}
