import Foundation
import Logging
import PacketIO
import Synchronization

/// A daemon's one data-path thread (the arbiter's communication thread, the agent's pacing
/// thread): started pinned and tuned, told to stop through a flag it polls, proving it is
/// alive with a heartbeat the watchdog reads, and waited for on stop with a timeout.
/// Both daemons' runtimes hold one, so the two threads start, report and stop alike.
final class DataPathThread: Sendable {
    /// What the thread is, as the logs name it ("communication", "pacing").
    let role: String
    private let stopRequested = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    /// When the thread last went round its loop (ns, wall clock).
    private let heartbeatTime = Atomic<UInt64>(0)
    private let finished = DispatchSemaphore(value: 0)

    init(role: String) { self.role = role }

    /// Starts `body` on a thread named `name`, pinned to `cpu` if given, with 1 µs timer
    /// slack and, for `realtimePriority` above 0, SCHED_FIFO at that priority. What cannot
    /// be set is logged as a warning naming the cost (`lateness`), and the thread runs
    /// anyway. `body` gets whether the pin took.
    func start(
        name: String, cpu: Int?, realtimePriority: Int, lateness: String, logger: Logger,
        body: @escaping @Sendable (_ pinned: Bool) -> Void
    ) {
        beat(RealtimeClock.now())
        PinnedThread.start(name: name, cpu: cpu) { [self] pinError in
            if pinError != 0 {
                logger.warning(
                    "cannot pin the \(role) thread to CPU \(cpu ?? -1): \(String(cString: strerror(pinError)))")
            }
            PinnedThread.setTimerSlack(nanoseconds: 1_000)
            if realtimePriority > 0 {
                let e = PinnedThread.setRealtimePriority(realtimePriority)
                if e != 0 {
                    logger.warning(
                        "cannot run the \(role) thread at real-time priority \(realtimePriority): \(String(cString: strerror(e))) (needs CAP_SYS_NICE); \(lateness)"
                    )
                }
            }
            body(cpu != nil && pinError == 0)
            stopped.store(true, ordering: .releasing)
            finished.signal()
        }
    }

    /// Whether the thread was asked to stop (polled by its loop).
    @inline(__always)
    var shouldStop: Bool { stopRequested.load(ordering: .relaxed) }

    /// The loop went round at `now`.
    @inline(__always)
    func beat(_ now: UInt64) { heartbeatTime.store(now, ordering: .relaxed) }

    /// When the loop last went round (ns, wall clock).
    var lastHeartbeat: UInt64 { heartbeatTime.load(ordering: .relaxed) }

    /// Asks the thread to stop and waits for it, at most `timeout` seconds; returns whether
    /// it stopped.
    func stop(timeout: Double) -> Bool {
        stopRequested.store(true, ordering: .releasing)
        if stopped.load(ordering: .acquiring) { return true }
        return finished.wait(timeout: .now() + timeout) == .success
    }
}
