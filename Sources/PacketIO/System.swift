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

    /// Runs the calling thread under the real-time FIFO policy at `priority` (1...99), so it
    /// runs as soon as it wakes, ahead of ordinary threads sharing its CPU; 0 returns it to
    /// the normal policy. Returns 0 or the error number.
    @discardableResult
    public static func setRealtimePriority(_ priority: Int) -> Int32 { fp_set_realtime(Int32(priority)) }

    /// CPUs this process may run on.
    public static var availableCPUs: Int { Int(fp_available_cpus()) }

    /// Lets the kernel wake the calling thread at most `nanoseconds` after its timeout
    /// (the default slack, 50 µs, is dozens of timeslots). Returns 0 or the error number.
    @discardableResult
    public static func setTimerSlack(nanoseconds: UInt) -> Int32 { fp_set_timer_slack(nanoseconds) }
}

/// Where memory goes on machines with more than one NUMA node, through libnuma (opened at
/// run time, so neither the build nor a one-node machine needs it).
public enum NUMAPlacement {
    /// NUMA nodes on this machine; nil when libnuma is missing or NUMA unavailable.
    public static var nodeCount: Int? {
        let n = fp_numa_nodes()
        return n > 0 ? Int(n) : nil
    }

    /// The node `cpu` belongs to; nil when unknown.
    public static func node(ofCPU cpu: Int) -> Int? {
        let n = fp_numa_node_of_cpu(Int32(cpu))
        return n >= 0 ? Int(n) : nil
    }

    /// What ``prefer(nodeOf:others:)`` did.
    public enum Outcome: Sendable, Equatable {
        /// One node (or no CPU named): nothing to place.
        case singleNode
        /// More than one node, but libnuma is not installed: memory goes where it falls.
        case libraryMissing
        /// libnuma does not know the CPU (offline, or beyond the machine's).
        case unknownCPU
        /// New memory of the calling thread comes from `node`; `spanning` lists the other
        /// nodes the named CPUs are on (their threads reach that memory across nodes).
        case preferred(node: Int, spanning: [Int])
    }

    /// Makes the calling thread's new memory come from the node of `cpu`, where the
    /// thread that uses it most will run, when the machine has more than one node. Call it
    /// before allocating the data path's memory (which is touched, and so placed, when it
    /// is initialised), then ``restore()``.
    public static func prefer(nodeOf cpu: Int?, others: [Int] = []) -> Outcome {
        let configured = sysfsNodeCount()
        guard let cpu, configured > 1 else { return .singleNode }
        guard let count = nodeCount, count > 1 else { return .libraryMissing }
        guard let node = node(ofCPU: cpu) else { return .unknownCPU }
        _ = fp_numa_prefer_node(Int32(node))
        let spanning = Set(others.compactMap { Self.node(ofCPU: $0) }).subtracting([node]).sorted()
        return .preferred(node: node, spanning: spanning)
    }

    /// Back to the default: memory from the node the thread runs on.
    public static func restore() { _ = fp_numa_prefer_node(-1) }

    /// Nodes the kernel lists (`/sys/devices/system/node/node*`): known without libnuma,
    /// so that its absence can be told apart from a one-node machine.
    public static func sysfsNodeCount() -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/devices/system/node")) ?? []
        return max(1, entries.filter { $0.hasPrefix("node") && Int($0.dropFirst(4)) != nil }.count)
    }
}
