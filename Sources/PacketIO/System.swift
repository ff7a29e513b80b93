import CPlatform
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The wall clock the arbiter numbers slots by: `CLOCK_REALTIME`, so that endpoints whose
/// clocks are synchronised (PTP, NTP) agree on slot numbers with it.
public enum RealtimeClock {
    /// Nanoseconds since the Unix epoch.
    @inline(__always)
    public static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }
}

/// Threads for the data path: started with a name, pinned to one CPU if asked.
public enum PinnedThread {
    /// Starts `body` on a new thread named `name`, pinned to `cpu` (nil: not pinned). A pin
    /// that fails is reported to `body` as the error number, so it can log and go on.
    public static func start(name: String, cpu: Int?, body: @escaping @Sendable (_ pinError: Int32) -> Void) {
        let thread = Thread {
            // Foundation's name does not reach the kernel's thread name on Linux.
            _ = fp_set_thread_name(name)
            let error = cpu.map { fp_pin_current_thread(Int32($0)) } ?? 0
            body(error)
        }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Lets the kernel wake the calling thread at most `nanoseconds` after its timeout
    /// (the default slack, 50 µs, is dozens of timeslots). Returns 0 or the error number.
    @discardableResult
    public static func setTimerSlack(nanoseconds: UInt) -> Int32 { fp_set_timer_slack(nanoseconds) }
}
