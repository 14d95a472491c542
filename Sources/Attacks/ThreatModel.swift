import Foundation

/// The norm that bounds an adversarial perturbation.
public enum ThreatNorm: String, CaseIterable, Codable, Equatable, Sendable {
    /// Every pixel moves by at most epsilon.
    case linf
    /// The Euclidean norm of each example's whole perturbation is at most epsilon.
    case l2
}

/// An attacker's budget, parsed once from the text checkpoints, configurations and command lines
/// use (`none`, `linf:8/255`, `l2:0.5`) and used as it is by attacks, evaluation, reports and
/// the daemon.
public struct ThreatModel: Equatable, Sendable {
    /// The norm, or nil for `none` (a model not meant to resist any attacker).
    public var norm: ThreatNorm?
    /// The radius in [0, 1] pixel units (0 for `none`).
    public var epsilon: Double
    /// The radius as it was written, e.g. `8/255` (empty for `none`).
    public var epsilonText: String

    /// No attacker.
    public static let none = ThreatModel(norm: nil, epsilon: 0, epsilonText: "")

    /// A budget from its parts.
    public init(norm: ThreatNorm?, epsilon: Double, epsilonText: String) {
        self.norm = norm
        self.epsilon = epsilon
        self.epsilonText = epsilonText
    }

    /// Parses `none`, `linf:8/255`, `l2:0.5`; nil for anything else.
    public init?(_ text: String) {
        if text == "none" {
            self = .none
            return
        }
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let n = ThreatNorm(rawValue: parts[0]), let e = parseEpsilon(parts[1]), e > 0 else {
            return nil
        }
        self.init(norm: n, epsilon: e, epsilonText: parts[1])
    }

    /// The text form `init?(_:)` reads.
    public var text: String { norm.map { "\($0.rawValue):\(epsilonText)" } ?? "none" }
}

/// A non-negative number written as a decimal or a fraction (`0.1`, `8/255`).
public func parseEpsilon(_ text: String) -> Double? {
    let parts = text.split(separator: "/").map { Double($0.trimmingCharacters(in: .whitespaces)) }
    switch parts.count {
    case 1: return parts[0].flatMap { $0.isFinite && $0 >= 0 ? $0 : nil }
    case 2:
        guard let a = parts[0], let b = parts[1], b > 0, a >= 0, (a / b).isFinite else { return nil }
        return a / b
    default: return nil
    }
}
