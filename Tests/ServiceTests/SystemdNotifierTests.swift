import Foundation
import XCTest

@testable import Service

/// A Unix datagram socket standing in for systemd's notification socket.
final class FakeNotifySocket {
    let path: String
    let fd: Int32

    init() throws {
        path = "/tmp/rrmd-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            close(fd)
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        // Reads give up after a second instead of hanging the test when nothing was sent.
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// The next datagram's text, or nil after a second of silence.
    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n < 0 ? nil : String(decoding: buffer[0..<n], as: UTF8.self)
    }

    deinit {
        close(fd)
        unlink(path)
    }
}

final class SystemdNotifierTests: XCTestCase {
    let variables = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"]
    var saved: [String: String] = [:]

    override func setUp() {
        for name in variables {
            if let value = getenv(name) { saved[name] = String(cString: value) }
            unsetenv(name)
        }
    }

    override func tearDown() {
        for name in variables {
            if let value = saved[name] { setenv(name, value, 1) } else { unsetenv(name) }
        }
    }

    func testNotificationsArriveAsDatagrams() throws {
        let socket = try FakeNotifySocket()
        setenv("NOTIFY_SOCKET", socket.path, 1)
        let notifier = SystemdNotifier()
        XCTAssertTrue(notifier.isActive)

        XCTAssertTrue(notifier.ready())
        XCTAssertEqual(socket.receive(), "READY=1")
        XCTAssertTrue(notifier.status("job a1b2: resnet20 epoch 3/10"))
        XCTAssertEqual(socket.receive(), "STATUS=job a1b2: resnet20 epoch 3/10")
        XCTAssertTrue(notifier.status("two\nlines"))
        XCTAssertEqual(socket.receive(), "STATUS=two lines", "a status is one line of the protocol")
        XCTAssertTrue(notifier.ready(status: "idle"))
        XCTAssertEqual(socket.receive(), "READY=1\nSTATUS=idle")
        XCTAssertTrue(notifier.stopping())
        XCTAssertEqual(socket.receive(), "STOPPING=1")
        XCTAssertTrue(notifier.send(["EXTEND_TIMEOUT_USEC=5000000"]))
        XCTAssertEqual(socket.receive(), "EXTEND_TIMEOUT_USEC=5000000")
    }

    func testReloadingCarriesTheMonotonicTime() throws {
        let socket = try FakeNotifySocket()
        setenv("NOTIFY_SOCKET", socket.path, 1)
        let before = SystemdNotifier.monotonicMicroseconds()
        XCTAssertTrue(SystemdNotifier().reloading(status: "re-reading /etc/rrmd/rrmd.toml"))
        let after = SystemdNotifier.monotonicMicroseconds()
        let lines = try XCTUnwrap(socket.receive()).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3)
        XCTAssertEqual(lines[0], "RELOADING=1")
        XCTAssertTrue(lines[1].hasPrefix("MONOTONIC_USEC="))
        let usec = try XCTUnwrap(UInt64(lines[1].dropFirst("MONOTONIC_USEC=".count)))
        XCTAssertTrue((before...after).contains(usec), "\(usec) not within \(before)...\(after)")
        XCTAssertEqual(lines[2], "STATUS=re-reading /etc/rrmd/rrmd.toml")
    }

    func testWatchdogOnlyWhenSystemdAskedForIt() throws {
        let socket = try FakeNotifySocket()
        setenv("NOTIFY_SOCKET", socket.path, 1)
        let notifier = SystemdNotifier()
        XCTAssertNil(notifier.watchdogInterval)
        XCTAssertNil(notifier.watchdogPingInterval)
        XCTAssertFalse(notifier.watchdog(), "no WatchdogSec=: no ping")

        setenv("WATCHDOG_USEC", "600000000", 1)
        setenv("WATCHDOG_PID", "\(getpid())", 1)
        XCTAssertEqual(notifier.watchdogInterval, 600)
        XCTAssertEqual(notifier.watchdogPingInterval, 300)
        XCTAssertTrue(notifier.watchdog())
        XCTAssertEqual(socket.receive(), "WATCHDOG=1")

        // The watchdog belongs to another process (e.g. rrmd was started by a script in the unit).
        setenv("WATCHDOG_PID", "\(getpid() + 1)", 1)
        XCTAssertNil(notifier.watchdogInterval)
        XCTAssertFalse(notifier.watchdog())
        XCTAssertNil(socket.receive())
    }

    func testNoOpOutsideSystemd() {
        let notifier = SystemdNotifier()
        XCTAssertFalse(notifier.isActive)
        XCTAssertFalse(notifier.ready())
        XCTAssertFalse(notifier.status("x"))
        XCTAssertFalse(notifier.reloading())
        XCTAssertFalse(notifier.stopping())
        XCTAssertFalse(notifier.watchdog())
    }
}
