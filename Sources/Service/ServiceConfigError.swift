/// A configuration file that cannot be used, with everything needed to fix it: the file, the
/// key, the value as written and what would have been accepted.
public struct ServiceConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What kind of mistake it is.
    public enum Kind: String, Equatable, Sendable {
        /// The file could not be read (missing, unreadable, too large, not UTF-8).
        case unreadable
        /// The file is not valid TOML.
        case syntax
        /// A key rrmd does not know (a typo must not be silently ignored).
        case unknownKey
        /// A value of the wrong TOML type (a string where a number belongs).
        case wrongType
        /// A number outside its allowed range.
        case outOfRange
        /// A value of the right type that is not allowed (an unknown architecture name).
        case invalidValue
    }

    /// What kind of mistake it is.
    public var kind: Kind
    /// The configuration file (or `<defaults>`).
    public var file: String
    /// The dotted key, e.g. `rrm.epochs`; nil when the problem is the file as a whole.
    public var key: String?
    /// The offending value as written (strings quoted), when there is one.
    public var value: String?
    /// What would be accepted: a range, a list of choices, a type.
    public var expected: String

    /// An error; see the properties.
    public init(kind: Kind, file: String, key: String?, value: String?, expected: String) {
        self.kind = kind
        self.file = file
        self.key = key
        self.value = value
        self.expected = expected
    }

    /// One sentence: the file, the key and value, and what is allowed.
    public var description: String {
        let subject = [key, value].compactMap { $0 }.joined(separator: " = ")
        switch kind {
        case .unreadable:
            return "cannot read configuration \(file): \(expected)"
        case .syntax:
            return "\(file): not valid TOML: \(expected)"
        case .unknownKey:
            return "\(file): unknown key '\(key ?? "")'; \(expected)"
        case .wrongType:
            return "\(file): \(subject) has the wrong type; expected \(expected)"
        case .outOfRange:
            return "\(file): \(subject) is out of range; allowed: \(expected)"
        case .invalidValue:
            return "\(file): \(subject) is not allowed; expected \(expected)"
        }
    }
}
