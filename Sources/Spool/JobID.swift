import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A job's name: the UTC second it was submitted (or claimed, for a file dropped into
/// `incoming/` by hand) and 8 random hex digits, e.g. `20261202-214900-3f9a1c2b`.
///
/// It is safe as a file name, readable, unique (32 random bits per second, and the spool also
/// refuses to reuse a taken directory), and sorts by time: ids in text order are jobs in arrival
/// order, to the second.
public struct JobID: Hashable, Comparable, Sendable, Codable, LosslessStringConvertible {
    /// The id as written, e.g. `20261202-214900-3f9a1c2b`.
    public let rawValue: String

    /// The number of characters in an id.
    public static let length = 24

    /// A new id for `date` with fresh randomness.
    public init(date: Date = Date(), random: UInt32 = UInt32.random(in: .min ... .max)) {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        rawValue = String(
            format: "%04d%02d%02d-%02d%02d%02d-%08x",
            Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), random)
    }

    /// The id spelled by `text`, or nil when `text` is not exactly an id (digits where the date
    /// goes, a real calendar date and time, lowercase hex at the end).
    public init?(_ text: String) {
        guard Self.timestamp(of: text) != nil else { return nil }
        rawValue = text
    }

    /// The id that starts `name` (followed by nothing, `.` or `--`), as `rrmd submit` names
    /// files in `incoming/`; nil when the name does not start with one.
    public init?(prefixOf name: String) {
        let utf8 = Array(name.utf8)
        guard utf8.count >= Self.length else { return nil }
        let rest = utf8[Self.length...]
        guard rest.isEmpty || rest.first == UInt8(ascii: ".") || rest.starts(with: "--".utf8) else { return nil }
        self.init(String(decoding: utf8[..<Self.length], as: UTF8.self))
    }

    /// The UTC second the id was made.
    public var date: Date {
        Date(timeIntervalSince1970: TimeInterval(Self.timestamp(of: rawValue)!))
    }

    /// The id as written.
    public var description: String { rawValue }

    /// Ids order by time, then by their random part.
    public static func < (a: JobID, b: JobID) -> Bool { a.rawValue < b.rawValue }

    /// Decodes an id from a JSON string, refusing anything that is not one.
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = JobID(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not a job id"))
        }
        self = id
    }

    /// Encodes the id as a JSON string.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// Seconds since 1970 of `YYYYMMDD-HHMMSS-xxxxxxxx`, or nil when `text` is not in that form.
    private static func timestamp(of text: String) -> Int? {
        let c = Array(text.utf8)
        guard c.count == length, c[8] == UInt8(ascii: "-"), c[15] == UInt8(ascii: "-") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in c[range] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        let hex = c[16...].allSatisfy {
            ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f"))
        }
        guard hex, let year = number(0..<4), let month = number(4..<6), let day = number(6..<8),
            let hour = number(9..<11), let minute = number(11..<13), let second = number(13..<15),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60
        else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        // timegm normalises 31 February into March; such a text is not an id we would write.
        guard parts.tm_mday == Int32(day), parts.tm_mon == Int32(month - 1) else { return nil }
        return Int(seconds)
    }
}
