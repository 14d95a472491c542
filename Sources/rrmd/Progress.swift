import Foundation
import Training

/// Progress on stderr: a redrawn bar with rate and ETA on a terminal, plain lines otherwise
/// (journald, pipes, CI logs), at most one plain line per `plainInterval` seconds.
final class ProgressReporter {
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private let plainInterval: Double
    private var lastPlain = Date.distantPast
    private var drewBar = false

    /// A reporter; `plainInterval` throttles the plain-line mode.
    init(plainInterval: Double = 10) { self.plainInterval = plainInterval }

    /// Shows `done` of `total` units of work described by `label` and `detail`; `rate` is units
    /// per second, used for the ETA.
    func update(label: String, done: Int, total: Int, rate: Double, unit: String, detail: String) {
        let remaining = rate > 0 ? Double(total - done) / rate : 0
        if isTerminal {
            let width = 28
            let filled = total > 0 ? min(width, width * done / total) : 0
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            let line =
                "\(label) [\(bar)] \(done)/\(total) \(Self.rate(rate)) \(unit)/s ETA \(Self.clock(remaining)) \(detail)"
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
            drewBar = true
        } else if Date().timeIntervalSince(lastPlain) >= plainInterval {
            lastPlain = Date()
            line("\(label) \(done)/\(total), \(Self.rate(rate)) \(unit)/s, ETA \(Self.clock(remaining)), \(detail)")
        }
    }

    /// Shows a training step as a bar, and an epoch's end as a line of its own.
    func training(_ p: TrainingProgress, batchSize: Int) {
        let label = "epoch \(p.epoch + 1)/\(p.epochs)"
        if p.epochDone {
            line(
                String(
                    format: "%@: loss %.4f, train accuracy %.2f%%, test accuracy %.2f%%, %.0f images/s",
                    label, p.loss, 100 * p.accuracy, 100 * (p.testAccuracy ?? 0), p.imagesPerSecond)
                    + (p.robustAccuracy.map { String(format: ", probe %.1f%% under attack", 100 * $0) } ?? ""))
        } else {
            update(
                label: label, done: p.step, total: p.stepsPerEpoch, rate: p.imagesPerSecond / Double(batchSize),
                unit: "steps",
                detail: String(format: "loss %.4f acc %.2f%% lr %.4g", p.loss, 100 * p.accuracy, p.learningRate))
        }
    }

    /// Prints a whole line (ending any bar in progress).
    func line(_ text: String) {
        if drewBar {
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            drewBar = false
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// A rate with enough digits to be useful whether it is 0.3 or 300.
    static func rate(_ r: Double) -> String { String(format: r < 10 ? "%.2f" : "%.0f", r) }

    /// `h:mm:ss` or `m:ss`.
    static func clock(_ seconds: Double) -> String {
        let s = Int(max(0, seconds.isFinite ? seconds : 0))
        return s >= 3600
            ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
