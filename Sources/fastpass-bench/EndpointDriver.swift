import FastpassArbiter
import FastpassDaemon
import FastpassProtocol
import FastpassStatus
import Foundation
import PacketIO

/// An FCP endpoint run by the project's own protocol code against a real arbiter: asks
/// for a planned demand and records every allocation it receives. For integration tests
/// and load generation; it sends no data.
public final class EndpointDriver {
    /// What one endpoint asks for.
    public struct Plan: Sendable {
        /// Index of the endpoint's host in the topology.
        public var host: Int
        /// Speak reference FCP (no extensions) instead of the extended protocol, reading
        /// ALLOC destinations as the original endpoint does (raw, path bits not stripped).
        public var reference: Bool
        /// Slots wanted, by destination host index.
        public var demand: [(destination: Int, slots: UInt64)]
        /// Slots an allocation may be late and still be taken (reference FCP: 16). A driver
        /// that sends no data can take them later, where scheduling on a loaded machine
        /// delays packets by more than the reference's 20 µs.
        public var acceptLateSlots: UInt64 = AllocationTimeWindow.reference.missThreshold
        /// Wall-clock time (ns) at which to ask for the demand; nil: at once. Endpoints
        /// started one after another ask together, once all are up, so that what is
        /// measured is the arbiter and not processes starting beside it.
        public var demandAt: UInt64?
        /// Judge allocations at the time the kernel received their packet (when the I/O
        /// stamps arrivals) instead of when this process got to it. The original endpoint
        /// is a kernel module that handles ALLOCs as they arrive; a process on a busy VM
        /// wakes tens of µs later, which is the test's cost, not the arbiter's.
        public var judgeAtArrival = false
        public init(host: Int, reference: Bool, demand: [(destination: Int, slots: UInt64)]) {
            self.host = host
            self.reference = reference
            self.demand = demand
        }
    }

    /// One allocation received.
    public struct Received: Sendable, Codable, Hashable {
        /// The arbiter's slot number (a reference endpoint's slot converted).
        public var slot: UInt64
        public var destination: String
        public var path: UInt16
    }

    /// What one endpoint got.
    public struct Outcome: Sendable, Codable {
        public var address: String
        public var reference: Bool
        public var demand: [String: UInt64]
        public var allocated: [String: UInt64]
        public var allocations: [Received]
        public var requestToFirstAllocationMicroseconds: Double?
        public var packetsSent: UInt64
        public var packetsReceived: UInt64
        public var complete: Bool
        /// The endpoint session's counters (late, premature, lost allocations, ...).
        public var session: EndpointSessionCounters
        /// Allocations for wanted destinations by `slot − current slot` on arrival (in the
        /// endpoint's slots; negative: already begun), as `"lead": count`.
        public var arrivalLeads: [String: UInt64]
        /// Packets from the arbiter by µs between the kernel receiving them and this process
        /// handling them (`"µs": count`; empty without receive timestamps).
        public var handlingDelays: [String: UInt64]
        /// Whether allocations were judged at the kernel's arrival time.
        public var judgedAtArrival: Bool
    }

    let topology: Topology
    let arbiter: UInt32
    let plan: Plan
    var session: EndpointSession
    let timeslotPicoseconds: UInt64

    public init(topology: Topology, arbiter: UInt32, plan: Plan, authenticator: FCPAuthenticator? = nil, now: UInt64) {
        self.topology = topology
        self.arbiter = arbiter
        self.plan = plan
        var c = EndpointSessionConfiguration()
        c.allocationWindow.missThreshold = plan.acceptLateSlots
        if plan.reference {
            c.mode = .reference
            // As the original endpoint: destinations looked up raw, path bits and all, so
            // an arbiter that sends path bits to a reference endpoint shows up as
            // allocations that name no flow (`allocations_unwanted`).
            c.stripsReferencePathBits = false
        } else {
            c.node = topology.nodeIDs[plan.host]
            c.address = topology.addresses[plan.host]
            c.authenticator = authenticator
        }
        session = EndpointSession(configuration: c, now: now)
        timeslotPicoseconds = UInt64((topology.timeslotNanoseconds * 1000).rounded())
    }

    func name(of d: Int) -> NodeID {
        plan.reference ? NodeID(UInt32(topology.referenceIDs[d])) : topology.nodeIDs[d]
    }

    func host(named node: NodeID) -> Int? {
        plan.reference ? topology.index(ofReferenceID: UInt16(node.rawValue)) : topology.index(of: node)
    }

    /// The arbiter's slot that reference slot `r` (starting at `start` ns) stands for: the
    /// one whose middle falls in it, as the arbiter numbers them (slot origin 0).
    func arbiterSlot(ofReference r: ReferenceSlot, start: UInt64) -> UInt64 {
        let estimate = timeslotPicoseconds.dividingFullWidth((start + 626).multipliedFullWidth(by: 1000)).quotient
        return SlotClock.slot(ofReference: r, near: estimate, origin: 0, picoseconds: timeslotPicoseconds)
            ?? estimate
    }

    /// Runs until every planned slot has been allocated, plus `linger` (to acknowledge the
    /// last packets), or until `timeout`.
    public func run<IO: PacketIO>(io: inout IO, timeout: Double, linger: Double = 0.2) -> Outcome {
        var start = RealtimeClock.now()
        let end = start + UInt64(timeout * 1e9)
        var wanted: [Int: UInt64] = [:]
        for (d, n) in plan.demand { wanted[d, default: 0] += n }
        var asked = false
        let total = wanted.values.reduce(0, +)
        var got: [Int: UInt64] = [:]
        var received: [Received] = []
        var count: UInt64 = 0
        var sent: UInt64 = 0
        var arrived: UInt64 = 0
        var firstAllocation: UInt64?
        var doneAt: UInt64?
        var handlingDelays: [Int: UInt64] = [:]
        // The time the session saw last: a packet's arrival stamp can be older than it.
        var sessionTime: UInt64 = 0
        var rx = PacketBatch(capacity: 16)
        var tx = PacketBatch(capacity: 16)
        while true {
            var now = RealtimeClock.now()
            if now >= end { break }
            if !asked && now >= (plan.demandAt ?? 0) {
                asked = true
                start = now
                for (d, n) in plan.demand { _ = session.addDemand(to: name(of: d), slots: n) }
            }
            if let d = doneAt, now >= d + UInt64(linger * 1e9) { break }
            // It sends no data, so it takes each allocation as soon as it is admitted instead
            // of waking at every slot: what it measures is whether allocations arrive in time,
            // and a driver polling at every slot took a CPU from the arbiter it measures.
            let wake = min(session.timerDeadline ?? .max, now + 1_000_000, asked ? .max : plan.demandAt ?? .max)
            let wait = wake > now ? Int64(wake - now) : 0
            let n = (try? io.receive(into: &rx, waitingUpTo: wait)) ?? 0
            now = RealtimeClock.now()
            func take(at time: UInt64) {
                while let a = session.takeEarliestAllocation(now: time) {
                    guard let d = host(named: a.destination) else { continue }
                    if firstAllocation == nil { firstAllocation = time }
                    let slot =
                        plan.reference
                        ? arbiterSlot(ofReference: ReferenceSlot(rawValue: a.slot), start: a.startNanoseconds) : a.slot
                    received.append(
                        Received(
                            slot: slot, destination: topology.configuration.hosts[d].address, path: a.path.rawValue))
                    got[d, default: 0] += 1
                    count += 1
                }
            }
            for i in 0..<n where rx.address(i) == arbiter {
                arrived &+= 1
                var t = now
                if let stamp = rx.arrivalTime(i) {
                    handlingDelays[Int(now > stamp ? (now - stamp) / 1000 : 0), default: 0] += 1
                    if plan.judgeAtArrival { t = stamp }
                }
                // Never backwards: a packet stamped before the session's last event is judged then.
                t = max(t, sessionTime)
                sessionTime = t
                _ = session.receive(rx.payload(i), now: t)
                // Taken as of that moment, as an endpoint in the kernel would have.
                take(at: t)
            }
            sessionTime = max(sessionTime, now)
            if let d = session.timerDeadline, d <= now { session.handleTimeout(now: now) }
            take(at: now)
            if count >= total && doneAt == nil { doneAt = now }
            while session.wantsToSend && session.earliestSendTime(now: now) <= now && !tx.isFull {
                let added = tx.append { buffer in
                    if case .success(let n) = session.send(now: now, into: buffer), n > 0 { return (arbiter, n) }
                    return nil
                }
                if !added { break }
            }
            sent &+= UInt64(tx.count)
            _ = try? io.send(&tx)
        }
        let address = topology.configuration.hosts[plan.host].address
        func named(_ m: [Int: UInt64]) -> [String: UInt64] {
            Dictionary(uniqueKeysWithValues: m.map { (topology.configuration.hosts[$0.key].address, $0.value) })
        }
        return Outcome(
            address: address, reference: plan.reference, demand: named(wanted), allocated: named(got),
            allocations: received,
            requestToFirstAllocationMicroseconds: firstAllocation.map { Double($0 - start) / 1e3 },
            packetsSent: sent, packetsReceived: arrived, complete: count >= total,
            session: EndpointSessionCounters(session.statistics),
            arrivalLeads: Self.counts(of: session.arrivalLeads),
            handlingDelays: Dictionary(uniqueKeysWithValues: handlingDelays.map { (String($0.key), $0.value) }),
            judgedAtArrival: plan.judgeAtArrival)
    }

    static func counts(of leads: AllocationLeadHistogram) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for lead in AllocationLeadHistogram.lowest...AllocationLeadHistogram.highest {
            let n = leads.count(lead: lead)
            if n > 0 { out[String(lead)] = n }
        }
        return out
    }
}
