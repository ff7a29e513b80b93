import FastpassAgent
import FastpassProtocol
import Foundation
import Logging
import PacketIO
import Synchronization

/// The agent's counters besides the core's: the devices and sockets around it.
public struct AgentIOStatistics: Sendable {
    /// Packets read from the TUN device.
    public var tunPackets: UInt64 = 0
    public var tunBytes: UInt64 = 0
    public var tunReadErrors: UInt64 = 0
    /// Packets sent out of the interface (released, bypassing, unscheduled).
    public var egressPackets: UInt64 = 0
    public var egressBytes: UInt64 = 0
    /// Packets the kernel refused to send (no buffer space, no route), dropped.
    public var egressErrors: UInt64 = 0
    /// Packets that bypass the schedule, sent at once.
    public var bypassSent: UInt64 = 0
    /// Non-IPv4 packets that reached the TUN device (only IPv4 is routed to it), dropped.
    public var nonIpv4Dropped: UInt64 = 0
    /// Malformed packets from the TUN device, dropped.
    public var malformedDropped: UInt64 = 0
    /// FCP packets received from the arbiter and sent to it; failures of either call
    /// (e.g. ICMP unreachable reported by the kernel while the arbiter is down).
    public var fcpReceived: UInt64 = 0
    public var fcpFromOthers: UInt64 = 0
    public var fcpSent: UInt64 = 0
    public var fcpReceiveErrors: UInt64 = 0
    public var fcpSendErrors: UInt64 = 0
    /// Released slots whose allocation reached the host after the slot's planned release
    /// time: the arbiter (or the path to it) was late, not the pacing thread.
    public var allocationsAfterPlannedRelease: UInt64 = 0
    /// Times the arbiter became unreachable, and came back.
    public var unreachableEvents: UInt64 = 0
    public var reachableAgain: UInt64 = 0
    /// Packets sent unscheduled straight from the TUN device while falling back (the core
    /// counts those it had queued); reported together as `packets_unscheduled`.
    public var unscheduledDirect: UInt64 = 0
    public init() {}
}

/// What the agent reports: copied from the pacing thread every 100 ms.
public struct AgentSnapshot: Sendable {
    public var time: UInt64 = 0
    public var startedAt: UInt64 = 0
    public var state = AgentState.connecting
    public var core = AgentStatistics()
    public var session = EndpointSessionStatistics()
    public var io = AgentIOStatistics()
    /// The FCP transport's own counters (for DPDK: ARP, frames not for this host).
    public var transport = PacketIOStatistics()
    public var queuedPackets = 0
    /// When the arbiter was last heard from (ns, wall clock; 0: never).
    public var lastHeard: UInt64 = 0
    /// The arbiter's announced timeslot (ps; 0: not yet known).
    public var slotPicoseconds: UInt64 = 0
    public var tun = ""
    /// Whether the pacing thread is pinned to its CPU.
    public var pinned = false
}

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

/// The pacing thread's state and loop, generic over the transport so that its calls
/// specialise.
struct AgentLoop<Net: AgentTransport>: ~Copyable {
    let c: AgentDaemonConfiguration
    var core: AgentCore
    let tun: TUNDevice
    let net: Net
    let logger: Logger
    let runtime: AgentRuntime
    let pinned: Bool
    /// Packet buffers, one per packet the core can hold plus one to read into: a packet's
    /// handle is its buffer's index.
    let stride: Int
    let buffers: UnsafeMutableRawPointer
    let free: UnsafeMutablePointer<UInt32>
    var freeCount: Int
    var io = AgentIOStatistics()

    init(
        configuration: AgentDaemonConfiguration, core: AgentCore, tun: TUNDevice, net: Net, logger: Logger,
        runtime: AgentRuntime, pinned: Bool
    ) {
        c = configuration
        self.core = core
        self.tun = tun
        self.net = net
        self.logger = logger
        self.runtime = runtime
        self.pinned = pinned
        // Room past the MTU, so an oversize packet reads whole and is refused, not cut.
        stride = (configuration.slotBytes + 64 + 63) & ~63
        let count = configuration.packetCapacity + 1
        buffers = UnsafeMutableRawPointer.allocate(byteCount: count * stride, alignment: 64)
        buffers.initializeMemory(as: UInt8.self, repeating: 0, count: count * stride)
        free = UnsafeMutablePointer<UInt32>.allocate(capacity: count)
        for i in 0..<count { free[i] = UInt32(count - 1 - i) }
        freeCount = count
    }

    deinit {
        buffers.deallocate()
        free.deallocate()
    }

    @inline(__always)
    func buffer(_ handle: UInt32) -> UnsafeMutableRawPointer { buffers + Int(handle) * stride }

    @inline(__always)
    mutating func release(_ handle: UInt32) {
        free[freeCount] = handle
        freeCount += 1
    }

    /// Sends a packet held in buffer `handle` out of the interface, and frees the buffer.
    @inline(__always)
    mutating func send(_ handle: UInt32, length: Int) {
        let e = net.sendIPv4Packet(UnsafeRawBufferPointer(start: buffer(handle), count: length))
        if e == 0 {
            io.egressPackets &+= 1
            io.egressBytes &+= UInt64(length)
        } else {
            io.egressErrors &+= 1
        }
        release(handle)
    }

    var sendsUnscheduled: Bool { core.sendsUnscheduled }

    mutating func run() {
        // 32: a DPDK port's vector receive path may take nothing from a smaller burst.
        var rx = PacketBatch(capacity: 32)
        var control = PacketBatch(capacity: 8)
        var nextPublish: UInt64 = 0
        var errorsLogged = 0
        while !runtime.thread.shouldStop {
            var now = RealtimeClock.now()
            // FCP from the arbiter.
            do {
                let n = try net.receiveFCP(into: &rx)
                for i in 0..<n {
                    guard rx.address(i) == c.arbiter else {
                        io.fcpFromOthers &+= 1
                        continue
                    }
                    io.fcpReceived &+= 1
                    core.receive(rx.payload(i), now: now)
                }
                if let t = core.takeTransition() { report(t) }
            } catch {
                io.fcpReceiveErrors &+= 1
            }
            // Packets from the applications.
            if let failure = readTUN(now: now) {
                logger.critical("\(failure); stopping")
                runtime.failureBox.withLock { $0 = failure }
                break
            }
            now = RealtimeClock.now()
            core.advance(now: now)
            while !control.isFull
                && control.append({ b in core.nextControlPacket(now: now, into: b).map { (c.arbiter, $0) } })
            {}
            if !control.isEmpty {
                do {
                    io.fcpSent &+= UInt64(try net.sendFCP(&control))
                } catch {
                    io.fcpSendErrors &+= 1
                    control.removeAll()
                }
            }
            // Packets whose slot has come (or, falling back, every packet queued).
            if sendsUnscheduled {
                while let r = core.takeUnscheduled() { send(r.handle, length: r.length) }
            } else {
                let lead = c.releaseLeadNanoseconds
                while let r = core.nextRelease(now: now) {
                    if r.allocationAdmitted > r.slotStart &- lead { io.allocationsAfterPlannedRelease &+= 1 }
                    send(r.handle, length: r.length)
                }
            }
            checkReachability(now: now)
            runtime.thread.beat(now)
            if now >= nextPublish {
                nextPublish = now &+ AgentRuntime.publishIntervalNanoseconds
                publish(now: now)
                if io.tunReadErrors > 0 && errorsLogged < 10 {
                    errorsLogged += 1
                    logger.error("reading \(tun.name) failed \(io.tunReadErrors) times")
                }
            }
            wait(now: now)
        }
        publish(now: RealtimeClock.now())
    }

    /// Reads what the applications sent. Returns why the device failed, if it did: a TUN
    /// device that errors (deleted under the agent) would otherwise spin the loop.
    mutating func readTUN(now: UInt64) -> String? {
        for _ in 0..<64 {
            guard freeCount > 0 else { return nil }
            let handle = free[freeCount - 1]
            let b = UnsafeMutableRawBufferPointer(start: buffer(handle), count: stride)
            let n: Int
            do {
                n = try tun.read(into: b)
            } catch {
                io.tunReadErrors &+= 1
                return "reading \(tun.name) failed: \(error)"
            }
            guard n > 0 else { return nil }
            freeCount -= 1
            io.tunPackets &+= 1
            io.tunBytes &+= UInt64(n)
            switch core.classify(UnsafeRawBufferPointer(start: b.baseAddress, count: n)) {
            case .schedule(let peer):
                if sendsUnscheduled {
                    io.unscheduledDirect &+= 1
                    send(handle, length: n)
                    continue
                }
                if core.enqueue(handle: handle, length: n, peer: peer) == .dropped { release(handle) }
            case .bypass(.notIPv4):
                io.nonIpv4Dropped &+= 1
                release(handle)
            case .bypass:
                io.bypassSent &+= 1
                send(handle, length: n)
            case .malformed:
                io.malformedDropped &+= 1
                release(handle)
            }
        }
        return nil
    }

    /// Logs what changed with the arbiter, as the core decided it.
    func report(_ t: AgentTransition) {
        switch t {
        case .established:
            let ps = core.session.announcedSlotPicoseconds ?? 0
            logger.info(
                "session with the arbiter established",
                metadata: ["arbiter": "\(IPv4.format(c.arbiter))", "timeslot_ns": "\(Double(ps) / 1000)"])
        case .reachableAgain:
            logger.notice(
                "the arbiter answers again: sending in timeslots",
                metadata: ["unscheduled_packets": "\(core.statistics.packetsUnscheduled)"])
        case .unreachable(let silent, let policy):
            let heard = silent.map { "silent for \($0 / 1_000_000) ms" } ?? "never heard from"
            logger.warning(
                "arbiter \(IPv4.format(c.arbiter)) unreachable (\(heard)) with \(core.queuedPackets) packets waiting: \(policy == .fallback ? "sending unscheduled until it answers" : "holding packets (unreachable.policy: hold)")"
            )
        }
    }

    /// The core decides when the arbiter is unreachable (and starts a new reset epoch);
    /// falling back, the packets it queued go first, in order, before anything newer.
    mutating func checkReachability(now: UInt64) {
        guard let t = core.checkReachability(now: now) else { return }
        report(t)
        if sendsUnscheduled {
            while let r = core.takeUnscheduled() { send(r.handle, length: r.length) }
        }
    }

    /// Sleeps until the next deadline or a packet (pacing: sleep), or goes straight round
    /// (pacing: busy).
    func wait(now: UInt64) {
        guard c.pacing == .sleep else { return }
        var timeout: UInt64 = 50_000_000
        // The core's deadline includes when waiting packets would make the arbiter unreachable.
        if let d = core.nextDeadline { timeout = d > now ? min(timeout, d - now) : 0 }
        guard timeout >= AgentRuntime.spinThresholdNanoseconds else { return }
        net.wait(orDescriptor: tun.descriptor, timeoutNanoseconds: Int64(timeout))
    }

    func publish(now: UInt64) {
        var s = core.statistics
        s.packetsUnscheduled &+= io.unscheduledDirect
        var io = io
        io.unreachableEvents = core.unreachableEvents
        io.reachableAgain = core.reachableAgainEvents
        let state = core.state
        let lastHeard = core.lastHeard
        // The transport drops sends the kernel or the port refuses itself.
        let transport = net.fcpStatistics
        io.fcpSendErrors &+= transport.sendDropped
        let session = core.session.statistics
        let queued = core.queuedPackets
        let slot = core.session.announcedSlotPicoseconds ?? 0
        runtime.snapshotBox.withLock { [io, state, lastHeard, pinned] snap in
            snap.time = now
            snap.state = state
            snap.core = s
            snap.session = session
            snap.io = io
            snap.transport = transport
            snap.queuedPackets = queued
            snap.lastHeard = lastHeard
            snap.slotPicoseconds = slot
            snap.pinned = pinned
        }
    }
}

/// The agent could not start: why, in one line.
public struct AgentStartError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}
