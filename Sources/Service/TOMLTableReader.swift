import Foundation
import TOMLKit

/// Typed, range-checked reads from one TOML table, turning every problem into a
/// `ServiceConfigError` that names the file, the dotted key, the value and what is allowed.
struct TOMLTableReader {
    let table: TOMLTable
    /// Dotted path of this table (`""` for the root, `"rrm"`, `"datasets.mnist"`).
    let path: String
    let file: String

    func key(_ name: String) -> String { path.isEmpty ? name : path + "." + name }

    /// Fails on the first key not in `allowed`, suggesting the nearest allowed key.
    func rejectUnknownKeys(_ allowed: [String]) throws {
        for name in table.keys.sorted() where !allowed.contains(name) {
            var hint = ""
            if let near = allowed.min(by: { editDistance($0, name) < editDistance($1, name) }),
                editDistance(near, name) <= max(2, name.count / 3)
            {
                hint = "did you mean '\(key(near))'? "
            }
            let place = path.isEmpty ? "at the top level" : "in [\(path)]"
            throw ServiceConfigError(
                kind: .unknownKey, file: file, key: key(name), value: nil,
                expected: hint + "keys allowed \(place): \(allowed.sorted().joined(separator: ", "))")
        }
    }

    func has(_ name: String) -> Bool { table[name] != nil }

    func wrongType(_ name: String, _ value: TOMLValueConvertible, _ expected: String) -> ServiceConfigError {
        ServiceConfigError(
            kind: .wrongType, file: file, key: key(name), value: render(value),
            expected: "\(expected), not \(article(value.type))")
    }

    func invalid(_ name: String, _ value: String, _ expected: String) -> ServiceConfigError {
        ServiceConfigError(kind: .invalidValue, file: file, key: key(name), value: value, expected: expected)
    }

    func int(_ name: String, default fallback: Int, range: ClosedRange<Int>, unit: String = "") throws -> Int {
        try optionalInt(name, range: range, unit: unit) ?? fallback
    }

    func optionalInt(_ name: String, range: ClosedRange<Int>, unit: String = "") throws -> Int? {
        guard let value = table[name] else { return nil }
        let allowed = "an integer in \(describe(range))\(unit.isEmpty ? "" : " " + unit)"
        guard let n = value.int else { throw wrongType(name, value, allowed) }
        guard range.contains(n) else {
            throw ServiceConfigError(kind: .outOfRange, file: file, key: key(name), value: String(n), expected: allowed)
        }
        return n
    }

    /// A float (integers accepted: `learning_rate = 1` means 1.0).
    func double(_ name: String, default fallback: Double, range: ClosedRange<Double>) throws -> Double {
        try optionalDouble(name, range: range) ?? fallback
    }

    /// A float, or nil when the key is absent.
    func optionalDouble(_ name: String, range: ClosedRange<Double>) throws -> Double? {
        guard let value = table[name] else { return nil }
        let allowed = "a number in \(range.lowerBound)...\(range.upperBound)"
        guard let x = value.double ?? value.int.map(Double.init) else { throw wrongType(name, value, allowed) }
        guard x.isFinite, range.contains(x) else {
            throw ServiceConfigError(
                kind: .outOfRange, file: file, key: key(name), value: render(value), expected: allowed)
        }
        return x
    }

    func optionalString(_ name: String) throws -> String? {
        guard let value = table[name] else { return nil }
        guard let s = value.string else { throw wrongType(name, value, "a string") }
        return s
    }

    /// One of `choices` (their raw values), e.g. `feature_loss = "cosine"`.
    func choice<T: RawRepresentable>(_ name: String, default fallback: T, choices: [T]) throws -> T
    where T.RawValue == String {
        guard let text = try optionalString(name) else { return fallback }
        guard let found = choices.first(where: { $0.rawValue == text }) else {
            throw invalid(name, quote(text), "one of " + choices.map { quote($0.rawValue) }.joined(separator: ", "))
        }
        return found
    }

    /// A non-empty list of distinct strings, each one of `allowed` or accepted by `alsoAllowed`
    /// (a family of names, such as `wideresnet-<depth>-<widen>`).
    func stringList(
        _ name: String, default fallback: [String], allowed: [String], alsoAllowed: (String) -> Bool = { _ in false }
    ) throws -> [String] {
        guard let value = table[name] else { return fallback }
        let expectation = "a non-empty list of distinct names from " + allowed.joined(separator: ", ")
        guard let array = value.array else { throw wrongType(name, value, expectation) }
        var out = [String]()
        for element in array {
            guard let s = element.string else { throw wrongType(name, value, expectation) }
            guard allowed.contains(s) || alsoAllowed(s) else {
                throw invalid(name, render(value), expectation + " ('\(s)' is not one)")
            }
            guard !out.contains(s) else {
                throw invalid(name, render(value), expectation + " ('\(s)' is listed twice)")
            }
            out.append(s)
        }
        guard !out.isEmpty else { throw invalid(name, "[]", expectation) }
        return out
    }

    /// A list of strings, possibly empty, taken as written (command-line arguments).
    func strings(_ name: String) throws -> [String] {
        guard let value = table[name] else { return [] }
        let expectation = "a list of strings"
        guard let array = value.array else { throw wrongType(name, value, expectation) }
        return try array.map { element in
            guard let s = element.string else { throw wrongType(name, value, expectation) }
            return s
        }
    }

    /// The sub-table `name`, or nil when absent.
    func subtable(_ name: String) throws -> TOMLTableReader? {
        guard let value = table[name] else { return nil }
        guard let t = value.table else { throw wrongType(name, value, "a table ([\(key(name))])") }
        return TOMLTableReader(table: t, path: key(name), file: file)
    }

    /// A value as the user wrote it, for messages.
    func render(_ value: TOMLValueConvertible) -> String {
        switch value.type {
        case .string: return quote(value.string ?? "")
        case .int: return String(value.int ?? 0)
        case .double: return String(value.double ?? 0)
        case .bool: return String(value.bool ?? false)
        case .array: return "[" + (value.array.map { $0.map(render).joined(separator: ", ") } ?? "") + "]"
        case .table: return "{...}"
        default: return value.debugDescription
        }
    }

    func quote(_ s: String) -> String { "\"" + s + "\"" }

    private func article(_ type: TOMLType) -> String {
        switch type {
        case .int: return "an integer"
        case .array: return "an array"
        default: return "a " + type.description
        }
    }

    private func describe(_ range: ClosedRange<Int>) -> String {
        range.upperBound == Int.max ? "\(range.lowerBound) or more" : "\(range.lowerBound)...\(range.upperBound)"
    }
}

/// Levenshtein distance, for "did you mean" hints on misspelt keys.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    var row = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in 1...max(b.count, 1) where !b.isEmpty {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return a.isEmpty ? b.count : row[b.count]
}
