import Foundation

/// `report.json`: the report as pretty-printed JSON with sorted keys, so that the same report
/// always gives the same bytes and two reports diff line by line.
public enum ReportJSON {
    /// The JSON text of `report`, UTF-8, ending with a newline.
    ///
    /// Throws `ReportJSONError.nonFinite` when a number is NaN or infinite, which JSON cannot
    /// hold; that is a bug in whatever computed the number, so the error names where it is.
    public static func encode(_ report: RobustnessReport) throws -> Foundation.Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            var data = try encoder.encode(report)
            data.append(0x0A)
            return data
        } catch EncodingError.invalidValue(let value, let context) {
            throw ReportJSONError.nonFinite(path: keyPath(context.codingPath), value: "\(value)")
        }
    }

    /// The report held by `data`; refuses reports of another schema version.
    public static func decode(_ data: Foundation.Data) throws -> RobustnessReport {
        // Read the schema first, so that a future version says so instead of failing on a key
        // that moved.
        struct SchemaOnly: Decodable { let schema: String? }
        let schema: String?
        do {
            schema = try JSONDecoder().decode(SchemaOnly.self, from: data).schema
        } catch {
            throw ReportJSONError.invalid(path: "", reason: "not a JSON object (\(error))")
        }
        guard schema == RobustnessReport.currentSchema else {
            throw ReportJSONError.unsupportedSchema(found: schema)
        }
        do {
            return try JSONDecoder().decode(RobustnessReport.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw ReportJSONError.invalid(path: keyPath(context.codingPath + [key]), reason: "missing")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
            let DecodingError.dataCorrupted(context)
        {
            throw ReportJSONError.invalid(path: keyPath(context.codingPath), reason: context.debugDescription)
        }
    }

    /// A coding path as people write it: `attacks[0].robust_accuracy`.
    static func keyPath(_ path: [CodingKey]) -> String {
        var text = ""
        for key in path {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += (text.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return text
    }
}

/// Why a report could not be turned into JSON or read back from it.
public enum ReportJSONError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A number at `path` is NaN or infinite.
    case nonFinite(path: String, value: String)
    /// The JSON's `schema` is not `rrmd.report/1` (nil when the key is missing).
    case unsupportedSchema(found: String?)
    /// The JSON does not match the schema at `path`.
    case invalid(path: String, reason: String)

    /// What went wrong and what to do about it.
    public var description: String {
        switch self {
        case .nonFinite(let path, let value):
            return "report value \(path.isEmpty ? "(top level)" : path) is \(value), which JSON cannot represent; "
                + "the evaluation produced an undefined number (e.g. an accuracy over zero samples) and should be "
                    + "fixed or rerun"
        case .unsupportedSchema(let found):
            return
                "report schema is \(found.map { "'\($0)'" } ?? "missing"), expected "
                    + "'\(RobustnessReport.currentSchema)'; "
                + "read it with the rrmd version that wrote it, or regenerate it with `rrmd evaluate`"
        case .invalid(let path, let reason):
            return "report JSON is invalid at \(path.isEmpty ? "the top level" : path): \(reason); "
                + "regenerate it with `rrmd evaluate` rather than editing it by hand"
        }
    }
}
