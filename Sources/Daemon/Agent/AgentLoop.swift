import FastpassAgent
import FastpassProtocol
import FixedStorage
import Foundation
import Logging
import PacketIO
import Synchronization

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
    let bufferBytes: FixedBuffer<UInt8>
    let free: FixedBuffer<UInt32>
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
        bufferBytes = FixedBuffer(repeating: 0, count: count * stride, alignment: 64)
        free = FixedBuffer(repeating: 0, count: count)
        freeCount = count
        for i in 0..<count { free[i] = UInt32(count - 1 - i) }
    }

    @inline(__always)
    func buffer(_ handle: UInt32) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(bufferBytes.base) + Int(handle) * stride
    }

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
