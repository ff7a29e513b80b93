import FastpassArbiter
import FastpassProtocol
import Foundation
import Logging
import PacketIO
import Synchronization

/// The arbiter on a real network: the arbiter core on one communication thread, pinned,
/// reading and writing FCP through a ``PacketIO`` backend on the wall clock.
///
/// The thread owns the core; the rest of the process sees it only through the snapshot
/// it publishes (under a mutex taken once per publish interval, never per packet).
public final class ArbiterRuntime: ServiceThread {
    public let configuration: ArbiterDaemonConfiguration
    public let topology: Topology
    let snapshotBox: Mutex<ArbiterSnapshot>
    /// The communication thread: its stop flag and its heartbeat, the watchdog's proof of life.
    let thread = DataPathThread(role: "communication")
    let logger: Logger

    public static let publishIntervalNanoseconds: UInt64 = 100_000_000
    /// Closer deadlines than this are waited for by polling the socket without sleeping:
    /// the kernel's wake-up is not precise enough for them.
    public static let spinThresholdNanoseconds: UInt64 = 20_000
    /// Receive batches read in one round of the loop at most, while they come full and
    /// nothing else is due (a batch to allocate, a timer): at a thousand endpoints, sixteen
    /// batches took 2.5 ms, and every allocation made after them was late.
    public static let receiveBatchesPerRound = 16
    /// Send batches written in one round at most, before the loop receives again.
    public static let sendBatchesPerRound = 16

    public init(configuration: ArbiterDaemonConfiguration, logger: Logger) throws(ConfigurationError) {
        self.configuration = configuration
        do {
            topology = try Topology(configuration.topology)
        } catch {
            throw ConfigurationError(field: "topology.\(error.field)", reason: error.reason)
        }
        var s = ArbiterSnapshot()
        s.endpoints = (0..<topology.hostCount).map { [topology] in EndpointSnapshot.idle(topology, $0) }
        snapshotBox = Mutex(s)
        self.logger = logger
    }

    /// The latest published state.
    public func snapshot() -> ArbiterSnapshot {
        snapshotBox.withLock { s in
            // A copy that shares no storage with the one the communication thread updates
            // in place: ThreadSanitizer caught that thread writing a histogram's counts
            // while an HTTP request read them, and 1 024 endpoints saw heap corruption.
            var copy = s
            copy.lateness = s.lateness.map { $0 }
            copy.endpoints = s.endpoints.map { $0 }
            copy.sendLeads = AllocationLeadHistogram(copying: s.sendLeads)
            return copy
        }
    }

    /// The last time the communication thread was seen working (ns, wall clock).
    public var lastHeartbeat: UInt64 { thread.lastHeartbeat }
    /// The communication thread does not give up by itself: errors are counted and logged.
    public var failure: String? { nil }

    /// Opens the socket and starts the communication thread. Errors name what failed (the
    /// socket, the key file, the core's configuration).
    public func start() throws(ArbiterStartError) {
        let authenticator: FCPAuthenticator?
        do {
            authenticator = try configuration.loadAuthenticator()
        } catch {
            throw ArbiterStartError(reason: error.description)
        }
        let io = try openBackend()
        let now = RealtimeClock.now()
        var coreConfiguration = configuration.coreConfiguration(authenticator: authenticator)
        // A new epoch per start: endpoints tell a restarted arbiter from a lost packet.
        coreConfiguration.session.epoch = now / 1_000_000
        if configuration.allocatorThreads > 0 && configuration.allocatorThreads + 2 > PinnedThread.availableCPUs {
            // Every one of these threads spins: sharing cores, they take turns in
            // scheduler quanta, and batches come late.
            logger.warning(
                "allocator_threads: \(configuration.allocatorThreads) stages, a path thread and the communication thread need \(configuration.allocatorThreads + 2) CPUs; this process has \(PinnedThread.availableCPUs). Expect late batches; allocator_threads: 0 runs the allocator inline"
            )
        }
        // The core's memory (sessions, pair table, rings) is allocated and touched here:
        // on a machine with several NUMA nodes, put it on the communication core's.
        let others = (configuration.allocatorCores ?? []) + [configuration.pathCore].compactMap { $0 }
        let placement = NUMAPlacement.prefer(nodeOf: configuration.communicationCore, others: others)
        defer { if case .preferred = placement { NUMAPlacement.restore() } }
        switch placement {
        case .singleNode: break
        case .libraryMissing:
            logger.warning("several NUMA nodes but libnuma (libnuma1) is missing: memory is not placed")
        case .unknownCPU:
            logger.warning(
                "cores.communication \(configuration.communicationCore ?? -1) has no NUMA node (offline?): memory is not placed"
            )
        case .preferred(let node, let spanning):
            logger.info("arbiter memory on NUMA node \(node), the communication core's")
            if !spanning.isEmpty {
                logger.warning(
                    "cores.allocator / cores.path are on other NUMA nodes too (\(spanning)): keep them on node \(node)")
            }
        }
        let core: ArbiterCore
        do {
            core = try ArbiterCore(topology: topology, configuration: coreConfiguration, now: now)
        } catch {
            throw ArbiterStartError(reason: error.description)
        }
        snapshotBox.withLock { $0.startedAt = now }
        switch io {
        case .socket(let socket):
            serve(core: core, io: socket)
        case .dpdk(let port):
            serve(core: core, io: port) { [logger] port in
                if let problem = port.registerPollingThread() { logger.warning("communication thread: \(problem)") }
            } after: { port in
                port.close()
            }
        }
        for note in configuration.notes { logger.notice("\(note)") }
        logger.info(
            "serving FCP",
            metadata: [
                "io": "\(io.description)",
                "address": "\(IPv4.format(configuration.listen))", "hosts": "\(topology.hostCount)",
                "timeslot_ns": "\(topology.timeslotNanoseconds)", "cpu": "\(configuration.communicationCore ?? -1)",
                "allocator":
                    "\(configuration.allocatorThreads == 0 ? "inline" : "\(configuration.allocatorThreads) stages + path thread")",
            ])
    }

    /// Starts the communication thread: `core` served over `io` until ``stop(timeout:)``.
    /// `before` and `after` run on the thread around the loop (a DPDK port registers the
    /// thread that polls it, and is closed by it). A test passes its own core and an
    /// in-memory ``MemoryPacketIO`` here to run the daemon's loop without a network.
    func serve<IO: PacketIO & SendableMetatype>(
        core: ArbiterCore, io: IO, before: @escaping (IO) -> Void = { _ in }, after: @escaping (IO) -> Void = { _ in }
    ) {
        // Handed to the thread that alone uses them from then on.
        let box = UncheckedBox((core, io, before, after))
        thread.start(
            name: "fp-comm", cpu: configuration.communicationCore, realtimePriority: configuration.realtimePriority,
            lateness: "batches come late on a busy host", logger: logger
        ) { [self] _ in
            let (core, io, before, after) = box.value
            before(io)
            if core.allocatorIsThreaded {
                // The threads pace batches on the monotonic clock; the core's is the wall clock.
                core.startAllocatorThreads(now: RealtimeClock.now(), monotonicNow: RealTimeSchedule.now())
            }
            run(core: core, io: io)
            core.stopAllocatorThreads()
            after(io)
        }
    }

    /// Opens the configured packet I/O backend; the error names the cause.
    func openBackend() throws(ArbiterStartError) -> ArbiterBackend {
        switch configuration.io {
        case .sockets:
            let socket = try openFCPSocket(configuration.listen)
            // Round trips measured to the kernel's arrival, not to when this thread got to
            // the packet (see ``ArbiterCore/receive(_:from:now:arrivedAt:)``).
            do { try socket.enableReceiveTimestamps() } catch {
                logger.warning("no receive time stamps (\(error)): round trips include the wait in the socket")
            }
            return .socket(socket)
        case .dpdk:
            guard let settings = configuration.dpdk else {
                throw ArbiterStartError(reason: "io: dpdk needs a dpdk section")
            }
            do {
                let port = try DPDKPort(
                    settings: settings, localAddress: configuration.listen, expectedPeers: topology.hostCount,
                    pollingCPU: configuration.communicationCore)
                port.resolveAhead(topology.addresses)
                return .dpdk(port)
            } catch {
                throw ArbiterStartError(reason: "cannot start DPDK: \(error)")
            }
        }
    }

    /// Asks the communication thread to stop and waits for it (at most `timeout` seconds).
    /// Returns whether it stopped.
    @discardableResult
    public func stop(timeout: Double = 5) -> Bool {
        thread.stop(timeout: timeout)
    }

    /// The communication loop: generic over the backend so its calls specialise.
    func run<IO: PacketIO>(core: ArbiterCore, io: IO) {
        var io = io
        var rx = PacketBatch(capacity: configuration.ioBatch)
        var tx = PacketBatch(capacity: configuration.ioBatch)
        var counters = LoopCounters()
        var nextPublish: UInt64 = 0
        var failures = 0
        var pinningReported = false
        // Packets left to send when a round stopped at its send limit: no sleeping then.
        var moreToSend = false
        var capacityWindow = CapacityWindow()
        while !thread.shouldStop {
            counters.loops &+= 1
            var now = RealtimeClock.now()
            var roundStart = now
            var worked = false
            // Inside the backend's calls (after any sleep): kernel time, for sockets.
            var receiveTime: UInt64 = 0
            let deadline = core.nextDeadline
            let wait: Int64 =
                deadline <= now || moreToSend
                ? 0
                : (deadline - now < Self.spinThresholdNanoseconds ? 0 : Int64(min(deadline - now, 50_000_000)))
            do {
                // What arrived first, up to a bound of full batches: acknowledgements and
                // demand that wait in the socket while the arbiter sends turn into its own
                // timeouts and resends (at a thousand endpoints it read one batch a round
                // and resent nearly all it sent). Only the first call may sleep.
                var batches = 0
                var n = 0
                repeat {
                    let before = batches == 0 ? now : RealtimeClock.now()
                    n = try io.receive(into: &rx, waitingUpTo: batches == 0 ? wait : 0)
                    now = RealtimeClock.now()
                    // Time spent asleep waiting for a packet is not work.
                    if batches == 0 && wait != 0 { roundStart = now } else { receiveTime &+= now &- before }
                    if n > 0 { worked = true }
                    for i in 0..<n {
                        core.receive(rx.payload(i), from: rx.address(i), now: now, arrivedAt: rx.arrivalTime(i))
                    }
                    batches += 1
                } while n == rx.capacity && batches < Self.receiveBatchesPerRound
                    && RealtimeClock.now() < core.nextDeadline
            } catch {
                failures += 1
                if failures <= 10 { logger.error("receive failed: \(error)") }
                now = RealtimeClock.now()
            }
            let due = core.nextDeadline
            if due <= now {
                let late = now - due
                counters.lateness[
                    late == 0 ? 0 : min(ArbiterSnapshot.latenessBuckets - 1, 64 - late.leadingZeroBitCount)] &+= 1
                core.advance(now: now)
                worked = true
            }
            var sendTime: UInt64 = 0
            var sentBatches = 0
            moreToSend = false
            while true {
                // Back to receiving after a bound, so a burst of sends cannot starve input.
                if sentBatches == Self.sendBatchesPerRound {
                    moreToSend = true
                    break
                }
                sentBatches += 1
                while !tx.isFull && tx.append({ core.nextPacket(now: now, into: $0) }) {}
                if tx.isEmpty { break }
                worked = true
                let full = tx.isFull
                let t = RealtimeClock.now()
                do {
                    _ = try io.send(&tx)
                    sendTime &+= RealtimeClock.now() &- t
                } catch {
                    failures += 1
                    if failures <= 10 { logger.error("send failed: \(error)") }
                    tx.removeAll()
                }
                if !full { break }
            }
            if worked {
                counters.busy &+= RealtimeClock.now() &- roundStart
                counters.io &+= receiveTime &+ sendTime
            }
            thread.beat(now)
            if now >= nextPublish {
                nextPublish = now + Self.publishIntervalNanoseconds
                measureCapacity(core: core, counters: counters, window: &capacityWindow)
                if !pinningReported && core.allocatorIsThreaded {
                    // Each allocator thread pins itself as it starts: by the first publish
                    // after start they have.
                    pinningReported = true
                    let (pinned, failed) = core.allocatorThreadPinning
                    if failed > 0 {
                        logger.warning(
                            "\(failed) allocator thread(s) could not be pinned to cores.allocator / cores.path (\(pinned) pinned)"
                        )
                    }
                }
                publish(core: core, io: io, now: now, counters: counters)
            }
        }
        publish(core: core, io: io, now: RealtimeClock.now(), counters: counters)
    }

    /// Tells the core how many packets a second of this thread's busy time receives, from
    /// the last publish interval, when it was busy enough for the figure to mean something.
    private func measureCapacity(core: ArbiterCore, counters: LoopCounters, window: inout CapacityWindow) {
        let received = core.statistics.packetsReceived
        defer { window = CapacityWindow(received: received, busy: counters.busy) }
        let busy = counters.busy &- window.busy
        let packets = received &- window.received
        let load = Double(busy) / Double(Self.publishIntervalNanoseconds)
        core.noteCommunicationLoad(busyFraction: load)
        // Loaded, and enough packets: below that the rate is fixed costs and noise (and a
        // capacity measured low from it would only shrink the shares further).
        guard load >= ArbiterCore.measuredLoad, packets >= 1_000 else { return }
        core.noteMeasuredCapacity(receivedPerBusySecond: Double(packets) * 1e9 / Double(busy))
    }

    private func publish<IO: PacketIO>(
        core: ArbiterCore, io: borrowing IO, now: UInt64, counters: LoopCounters
    ) {
        let stats = io.statistics
        snapshotBox.withLock { s in
            s.time = now
            s.currentSlot = core.currentSlot(now: now)
            s.loops = counters.loops
            s.busyNanoseconds = counters.busy
            s.ioNanoseconds = counters.io
            s.core = core.statistics
            s.allocator = core.allocatorStatistics
            s.io = stats
            s.allocatorThreads = core.allocatorIsThreaded ? configuration.allocatorThreads + 1 : 0
            s.allocatorThreadsPinned = core.allocatorThreadPinning.pinned
            s.sendLeadSlots = core.sendLeadSlots
            s.lookaheadSlots = core.lookaheadSlots
            s.roundTripP99Nanoseconds = core.roundTripP99Nanoseconds ?? 0
            s.controlConfigured = core.configuration.controlPacketsPerSecond
            s.controlCapacity = core.controlCapacity
            s.controlShare = core.controlBudget
            s.sendLeads.assign(core.sendLeads)
            for i in s.lateness.indices { s.lateness[i] = counters.lateness[i] }
            for i in 0..<topology.hostCount {
                guard let session = core.session(forAddress: topology.addresses[i]) else {
                    s.endpoints[i].connected = false
                    continue
                }
                s.endpoints[i].connected = true
                if case .extended = session.negotiation {
                    s.endpoints[i].extended = true
                } else {
                    s.endpoints[i].extended = false
                }
                s.endpoints[i].session = session.statistics
                s.endpoints[i].connection = session.connection.statistics
            }
        }
    }
}

/// What the communication thread counts about itself between publications (fields as in
/// ``ArbiterSnapshot``).
/// The received-packet count and busy time at the start of a capacity measurement.
struct CapacityWindow {
    var received: UInt64 = 0
    var busy: UInt64 = 0
}

struct LoopCounters {
    var loops: UInt64 = 0
    var busy: UInt64 = 0
    var io: UInt64 = 0
    var lateness = [UInt64](repeating: 0, count: ArbiterSnapshot.latenessBuckets)
}

/// The communication thread's packet I/O, one case per backend so that the loop is
/// specialised for each.
enum ArbiterBackend: CustomStringConvertible {
    case socket(RawIPv4Socket)
    case dpdk(DPDKPort)

    var description: String {
        switch self {
        case .socket: "raw sockets"
        case .dpdk(let p): p.summary
        }
    }
}

/// The arbiter could not start: why, in one line.
public struct ArbiterStartError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// Hands a value that is not `Sendable` to the one thread that will own it from then on.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
