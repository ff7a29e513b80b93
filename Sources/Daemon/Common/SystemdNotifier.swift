import Foundation
import Logging
import PacketIO

#if canImport(Glibc)
    import Glibc
#endif

/// systemd's readiness protocol (`Type=notify`): a datagram of `KEY=value` lines to the
/// socket named in `$NOTIFY_SOCKET`. Does nothing when the variable is absent, as when
/// run by hand.
public enum SystemdNotifier {
    /// Sends `state` (e.g. "READY=1"). Returns false when there is no socket or it failed.
    @discardableResult
    public static func notify(_ state: String) -> Bool {
        guard let path = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"], !path.isEmpty else { return false }
        return send(state, to: path)
    }

    static func send(_ state: String, to path: String) -> Bool {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        // A leading '@' names an abstract socket: a NUL byte in the kernel's terms.
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let sent = state.utf8CString.withUnsafeBufferPointer { message in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, message.baseAddress, message.count - 1, 0, $0, length)
                }
            }
        }
        return sent == state.utf8.count
    }

    /// How often systemd expects `WATCHDOG=1`, if it watches this process.
    public static var watchdogInterval: Duration? {
        let env = ProcessInfo.processInfo.environment
        guard let text = env["WATCHDOG_USEC"], let usec = UInt64(text), usec > 0 else { return nil }
        if let pid = env["WATCHDOG_PID"], let p = Int32(pid), p != getpid() { return nil }
        return .microseconds(Int64(clamping: usec))
    }

    /// Feeds systemd's watchdog every quarter interval until cancelled, but only while
    /// `heartbeat()` (the wall-clock time a data-path thread last went round its loop) is
    /// younger than half the interval: a stuck thread lets systemd restart the service.
    static func feedWatchdog(
        every interval: Duration, thread: String, logger: Logger, heartbeat: @Sendable () -> UInt64
    ) async {
        let limit =
            UInt64(interval.components.seconds) * 1_000_000_000
            + UInt64(interval.components.attoseconds / 1_000_000_000)
        while !Task.isCancelled {
            let age = RealtimeClock.now() &- heartbeat()
            if age < limit / 2 {
                notify("WATCHDOG=1")
            } else {
                logger.error("\(thread) thread silent for \(age / 1_000_000) ms; not feeding the watchdog")
            }
            try? await Task.sleep(for: interval / 4)
        }
    }
}
