import FastpassAgent
import FastpassProtocol
import Foundation
import Logging
import PacketIO
import Synchronization

/// The agent on a real host: the agent core on one pacing thread that reads the TUN
/// device and the FCP socket, and sends each packet out of the interface at its slot.
///
/// The thread owns the core, the device and the sockets; the rest of the process sees
/// them only through the snapshot it publishes.
public final class AgentRuntime: ServiceThread {
    public let configuration: AgentDaemonConfiguration
    let snapshotBox: Mutex<AgentSnapshot>
    /// The pacing thread: its stop flag and its heartbeat, the watchdog's proof of life.
    let thread = DataPathThread(role: "pacing")
    let logger: Logger
    /// Why the pacing thread gave up (the TUN device failed), if it did.
    let failureBox = Mutex<String?>(nil)

    /// Why the pacing thread stopped by itself; nil while it runs or after a requested stop.
    public var failure: String? { failureBox.withLock { $0 } }

    public static let publishIntervalNanoseconds: UInt64 = 100_000_000
    /// Deadlines closer than this are waited for without sleeping.
    public static let spinThresholdNanoseconds: UInt64 = 3_000

    public init(configuration: AgentDaemonConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        var s = AgentSnapshot()
        s.tun = configuration.tun
        snapshotBox = Mutex(s)
    }

    public func snapshot() -> AgentSnapshot { snapshotBox.withLock { $0 } }
    public var lastHeartbeat: UInt64 { thread.lastHeartbeat }

    /// Creates the TUN device, removes what an earlier run left, routes the peers through
    /// the device, opens the sockets and starts the pacing thread. Errors name what failed;
    /// nothing is left configured after one.
    public func start() throws(AgentStartError) {
        let c = configuration
        if let p = HostNetwork.problem(c) { throw AgentStartError(reason: p) }
        let tun: TUNDevice
        do {
            tun = try TUNDevice(name: c.tun)
        } catch {
            var reason = "cannot create TUN device \(c.tun): \(error)"
            if error.code == EBUSY { reason += " (another fastpass-agent, or another program, holds it)" }
            if error.code == EPERM { reason += " (needs CAP_NET_ADMIN)" }
            if error.code == ENOENT { reason += " (/dev/net/tun is missing: modprobe tun)" }
            throw AgentStartError(reason: reason)
        }
        let removed = HostNetwork.removeLeftovers(c)
        if !removed.isEmpty {
            logger.notice(
                "removed what an earlier run left", metadata: ["removed": "\(removed.joined(separator: ", "))"])
        }
        let transport: AgentTransportKind
        do {
            transport = try AgentTransportKind.open(c)
        } catch {
            throw AgentStartError(reason: error.reason)
        }
        do {
            try HostNetwork.setUp(c, tun: tun.name)
        } catch {
            throw AgentStartError(reason: "cannot route the peers through \(tun.name): \(error)")
        }
        let now = RealtimeClock.now()
        let core: AgentCore
        do {
            core = try AgentCore(configuration: c.agentConfiguration(), now: now)
        } catch {
            HostNetwork.removeLeftovers(c)
            throw AgentStartError(reason: error.description)
        }
        snapshotBox.withLock { $0.startedAt = now }
        let box = UncheckedBox((core, tun, transport))
        thread.start(
            name: "fp-pacing", cpu: c.pacingCore, realtimePriority: c.pacingPriority,
            lateness: "it wakes late on a busy host", logger: logger
        ) { [self] pinned in
            let (core, tun, transport) = box.value
            switch transport {
            case .sockets(let t):
                var loop = AgentLoop(
                    configuration: c, core: core, tun: tun, net: t, logger: logger, runtime: self, pinned: pinned)
                loop.run()
            case .dpdk(let t):
                if let problem = t.port.registerPollingThread() { logger.warning("pacing thread: \(problem)") }
                var loop = AgentLoop(
                    configuration: c, core: core, tun: tun, net: t, logger: logger, runtime: self, pinned: pinned)
                loop.run()
                t.port.close()
            }
        }
        if case .dpdk(let t) = transport, !["net_af_packet", "net_tap"].contains(t.port.driver) {
            logger.warning(
                "\(t.port.deviceName) (\(t.port.driver)) belongs to DPDK alone: packets for this host other than FCP arrive there and are dropped, not passed to the kernel (docs/agent.md)"
            )
        }
        logger.info(
            "scheduling traffic to \(c.peers.count) peers",
            metadata: [
                "tun": "\(tun.name)", "interface": "\(c.interface)", "io": "\(transport.description)",
                "arbiter": "\(IPv4.format(c.arbiter))",
                "table": "\(c.routingTable)", "unreachable": "\(c.unreachablePolicy.rawValue)",
                "pacing": "\(c.pacing.rawValue)",
            ])
    }

    /// Stops the pacing thread (at most `timeout` seconds), then removes the rule and
    /// routes. Returns whether the thread stopped.
    @discardableResult
    public func stop(timeout: Double = 5) -> Bool {
        let ok = thread.stop(timeout: timeout)
        HostNetwork.removeLeftovers(configuration)
        return ok
    }
}

/// The agent could not start: why, in one line.
public struct AgentStartError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}
