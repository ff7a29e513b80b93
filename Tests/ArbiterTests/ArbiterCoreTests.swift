import FastpassProtocol
import TestSupport
import Testing

@testable import FastpassArbiter

/// The arbiter core with real endpoint sessions on an in-memory network: demand goes in
/// as FCP requests, allocations come back as ALLOC / WIDE-ALLOC and are used by the
/// endpoints in their slots.
@Suite("Arbiter core")
struct ArbiterCoreTests {
    /// One endpoint: its FCP session and what it used.
    struct Host {
        var session: EndpointSession
        let address: UInt32
        let reference: Bool
        /// Allocations used, by the arbiter slot they fall in: (arbiter slot, destination host, path).
        var used: [(slot: UInt64, destination: Int, path: UInt16)] = []
    }

    /// A fabric of `hosts` endpoints and the arbiter on a control network with 2 µs of
    /// latency, advanced in steps of `step` ns.
    struct Network {
        var core: ArbiterCore
        var hosts: [Host]
        let topology: Topology
        var now: UInt64
        // Loss is drawn on arrival, as this suite always drew it, so that the lossy test's
        // seed keeps its run.
        var control = VirtualControlNetwork(latency: 2_000, lossDecision: .onArrival, random: TestRandom(seed: 7))
        var buffer = [UInt8](repeating: 0, count: 2048)
        /// The arbiter does nothing before this time (a descheduled thread): packets to it wait.
        var arbiterStalledUntil: UInt64 = 0
        /// Time follows the monotonic clock (for allocator threads, which pace themselves
        /// by it) instead of advancing by steps.
        let realTime: Bool
        /// Every destination field of the reference ALLOC payloads the arbiter sent to
        /// reference endpoints, raw (path bits included).
        var referenceAllocDestinations: [UInt16] = []

        init(
            topology: Topology, referenceHosts: Set<Int>, configuration: ArbiterCoreConfiguration = .init(),
            acceptLateSlots: UInt64 = AllocationTimeWindow.reference.missThreshold, realTime: Bool = false,
            allocatorStartedLate: UInt64 = 0, stripsReferencePathBits: Bool = true
        ) throws {
            self.topology = topology
            self.realTime = realTime
            now = realTime ? RealTimeSchedule.now() : 1_000_000_000
            core = try ArbiterCore(topology: topology, configuration: configuration, now: now)
            // Started late: as if the threads had been started that long ago and had
            // not run since, so that their first batch is long past and they must skip.
            if realTime {
                core.startAllocatorThreads(now: now - allocatorStartedLate, monotonicNow: now - allocatorStartedLate)
            }
            var hosts: [Host] = []
            for h in 0..<topology.hostCount {
                var c = EndpointSessionConfiguration()
                c.allocationWindow.missThreshold = acceptLateSlots
                let reference = referenceHosts.contains(h)
                if reference {
                    c.mode = .reference
                    c.stripsReferencePathBits = stripsReferencePathBits
                } else {
                    c.node = topology.nodeIDs[h]
                    c.address = topology.addresses[h]
                }
                hosts.append(
                    Host(
                        session: EndpointSession(configuration: c, now: now), address: topology.addresses[h],
                        reference: reference))
            }
            self.hosts = hosts
        }

        /// Host `h` speaks the extended protocol without asking for the announced clock.
        mutating func makeClockless(_ h: Int) {
            var c = EndpointSessionConfiguration()
            c.node = topology.nodeIDs[h]
            c.address = topology.addresses[h]
            c.capabilities = [.epochFencing, .wideCounters, .giveBack]
            c.mode = .extended(fallbackToReference: false)
            hosts[h].session = EndpointSession(configuration: c, now: now)
        }

        /// How host `h` names host `d` in its requests.
        func name(of d: Int, by h: Int) -> NodeID {
            hosts[h].reference ? NodeID(UInt32(topology.referenceIDs[d])) : topology.nodeIDs[d]
        }

        /// Host `h` asks its session for `slots` more towards host `d`; false when refused.
        mutating func ask(from h: Int, to d: Int, slots: UInt64) -> Bool {
            hosts[h].session.addDemand(to: name(of: d, by: h), slots: slots)
        }

        /// Every host asks for `slots(h, k)` towards host `h + k·stride` (mod the host count),
        /// for k in 1...`count`, skipping itself. Returns what was asked, by
        /// `source * 64 + destination`.
        mutating func askEach(stride: Int, count: Int, slots: (Int, Int) -> UInt64) -> [Int: UInt64] {
            var asked: [Int: UInt64] = [:]
            for h in 0..<hosts.count {
                for k in 1...count {
                    let d = (h + k * stride) % hosts.count
                    guard d != h else { continue }
                    let n = slots(h, k)
                    let added = ask(from: h, to: d, slots: n)
                    #expect(added)
                    asked[h * 64 + d, default: 0] += n
                }
            }
            return asked
        }

        /// Slots the hosts used, by `source * 64 + destination`.
        var usedPerPair: [Int: UInt64] {
            var got: [Int: UInt64] = [:]
            for (h, host) in hosts.enumerated() {
                for u in host.used { got[h * 64 + u.destination, default: 0] += 1 }
            }
            return got
        }

        func host(named node: NodeID, by h: Int) -> Int? {
            hosts[h].reference ? topology.index(ofReferenceID: UInt16(node.rawValue)) : topology.index(of: node)
        }

        /// When reference slot `r` starts: ⌈r · 2^19 / 419⌉ ns.
        static func referenceStart(_ r: UInt64) -> UInt64 {
            let (high, low) = r.multipliedFullWidth(by: 1 << 19)
            let (q, remainder) = UInt64(419).dividingFullWidth((high, low))
            return remainder == 0 ? q : q + 1
        }

        mutating func run(for duration: UInt64, step: UInt64 = 1_000) {
            let end = now + duration
            while now < end {
                now = realTime ? max(now + 1, RealTimeSchedule.now()) : now + step
                let stalled = now < arbiterStalledUntil
                for p in control.deliver(upTo: now, where: { !(stalled && $0 == .arbiter) }) {
                    p.bytes.withUnsafeBytes { raw in
                        if p.toArbiter {
                            core.receive(raw, from: hosts[p.host].address, now: now)
                        } else {
                            _ = hosts[p.host].session.receive(raw, now: now)
                        }
                    }
                }
                if !stalled {
                    core.advance(now: now)
                    while let (address, length) = buffer.withUnsafeMutableBytes({
                        core.nextPacket(now: now, into: $0)
                    }) {
                        let h = topology.index(ofAddress: address)!
                        control.send(Array(buffer[0..<length]), from: .arbiter, to: .host(h), now: now)
                        if hosts[h].reference {
                            referenceAllocDestinations += AllocDestinations.read(buffer[0..<length])
                        }
                    }
                }
                for h in 0..<hosts.count {
                    if let deadline = hosts[h].session.timerDeadline, deadline <= now {
                        hosts[h].session.handleTimeout(now: now)
                    }
                    if hosts[h].session.wantsToSend {
                        let length = buffer.withUnsafeMutableBytes { hosts[h].session.send(now: now, into: $0) }
                        if case .success(let n) = length {
                            control.send(Array(buffer[0..<n]), from: .host(h), to: .arbiter, now: now)
                        }
                    }
                    while let a = hosts[h].session.takeAllocation(dueBy: now) {
                        // Our slot numbers for an endpoint on the announced clock; a reference
                        // slot (any other endpoint's) is the arbiter slot whose middle it contains.
                        let slot =
                            !hosts[h].session.negotiation.granted.contains(.announcedClock)
                            ? SlotClock.slot(
                                ofReference: ReferenceSlot(rawValue: a.slot),
                                near: core.currentSlot(now: Self.referenceStart(a.slot) + 626),
                                origin: 0, picoseconds: core.timeslotPicoseconds)! : a.slot
                        let d = host(named: a.destination, by: h)!
                        hosts[h].used.append((slot, d, a.path.rawValue))
                    }
                }
            }
        }
    }

    /// Checks what the endpoints used against the fabric: one packet per host per slot in
    /// each direction, paths on existing spines (and reference ones within 2 bits).
    static func checkSchedule(_ network: Network) {
        var bySlotSource: Set<UInt64> = []
        var bySlotDestination: Set<UInt64> = []
        let t = network.topology
        for (h, host) in network.hosts.enumerated() {
            for u in host.used {
                #expect(
                    bySlotSource.insert(u.slot << 16 | UInt64(h)).inserted, "host \(h) sends twice in slot \(u.slot)")
                #expect(
                    bySlotDestination.insert(u.slot << 16 | UInt64(u.destination)).inserted,
                    "host \(u.destination) receives twice in slot \(u.slot)")
                #expect(u.destination != h)
                if t.rackOf[h] != t.rackOf[u.destination] { #expect(Int(u.path) < t.spineCount) }
                if host.reference { #expect(u.path <= 3) }
            }
        }
    }

    static func referenceTopology() throws -> Topology {
        var c = TopologyConfiguration.regular(racks: 2, hostsPerRack: 4, spines: 2)
        c.referenceEndpoints = true
        return try Topology(c)
    }

    @Test("reference and extended endpoints side by side get exactly the slots they ask for")
    func mixedEndpoints() throws {
        let topology = try Self.referenceTopology()
        var network = try Network(topology: topology, referenceHosts: [1, 4, 6])
        let asked = network.askEach(stride: 3, count: 3) { h, k in UInt64(20 + 7 * k + h) }
        network.run(for: 3_000_000)
        let got = network.usedPerPair
        #expect(got == asked, "used \(got.values.reduce(0, +)) of \(asked.values.reduce(0, +)) slots asked for")
        Self.checkSchedule(network)
        let s = network.core.statistics
        #expect(s.packetsDropped == 0 && s.packetsFromUnknownHosts == 0)
        #expect(s.allocationsStale == 0)
        #expect(s.registrations == 5, "extended endpoints register")
        for h in [1, 4, 6] {
            #expect(network.core.session(forAddress: topology.addresses[h])?.negotiation == .reference)
        }
        for h in [0, 2, 3, 5, 7] {
            #expect(network.hosts[h].session.negotiation.granted.contains(.announcedClock))
        }
    }

    @Test("a pair table too small for the demand: what it refuses is kept and offered again until every slot arrives")
    func refusedDemandRetried() throws {
        let topology = try Self.referenceTopology()
        var configuration = ArbiterCoreConfiguration()
        configuration.allocator.pairCapacity = 3
        var network = try Network(topology: topology, referenceHosts: [1, 4], configuration: configuration)
        let asked = network.askEach(stride: 1, count: 4) { h, k in UInt64(5 + k + h) }
        network.run(for: 3_000_000)
        let got = network.usedPerPair
        #expect(got == asked, "used \(got.values.reduce(0, +)) of \(asked.values.reduce(0, +)) slots asked for")
        Self.checkSchedule(network)
        let s = network.core.statistics
        #expect(s.allocatorRefusals > 0, "the table was never full: the test does not test refusal")
        #expect(s.demandDropped == 0)
    }

    @Test("with packets lost both ways every slot asked for still arrives, and none twice")
    func lossyNetwork() throws {
        let topology = try Topology(.regular(racks: 2, hostsPerRack: 4, spines: 2))
        var network = try Network(topology: topology, referenceHosts: [])
        network.control.lossRate = 0.05
        var asked: [Int: UInt64] = [:]
        for h in 0..<topology.hostCount {
            let d = (h + 5) % topology.hostCount
            let added = network.ask(from: h, to: d, slots: 300)
            #expect(added)
            asked[h * 64 + d] = 300
        }
        network.run(for: 8_000_000)
        let got = network.usedPerPair
        // Lost ALLOCs are reported, declared lost by the endpoint and asked for again.
        #expect(got == asked, "\(got) vs \(asked)")
        Self.checkSchedule(network)
    }

    @Test("an extended endpoint whose first packets are all lost still registers and is served in full")
    func lossAtStart() throws {
        let topology = try Self.referenceTopology()
        var network = try Network(topology: topology, referenceHosts: [1])
        // Everything host 0 sends in its first 20 ms is lost: far more HELLO timeouts than
        // the fallback threshold, with no sign from the arbiter that it ignores HELLO.
        network.control.silentUntil[.host(0)] = network.now + 20_000_000
        let added = network.ask(from: 0, to: 5, slots: 500)
        let added1 = network.ask(from: 1, to: 0, slots: 300)
        #expect(added && added1)
        network.run(for: 30_000_000, step: 2_000)
        #expect(network.hosts[0].used.count == 500, "used \(network.hosts[0].used.count) of 500")
        #expect(network.hosts[1].used.count == 300)
        #expect(network.hosts[0].session.statistics.fallbacks == 0)
        #expect(network.hosts[0].session.negotiation.granted.contains(.announcedClock))
        Self.checkSchedule(network)
    }

    @Test("a core called late, again and again, skips slots but never books one twice")
    func lateCallsKeepScheduleValid() throws {
        let topology = try Self.referenceTopology()
        // Endpoints that take allocations up to 150 slots late, as the integration test's do.
        var network = try Network(topology: topology, referenceHosts: [1, 4, 6], acceptLateSlots: 150)
        let asked = network.askEach(stride: 3, count: 3) { _, _ in 400 }.values.reduce(0, +)
        for step: UInt64 in [7_000, 61_000, 23_000, 130_000] {
            network.run(for: 4_000_000, step: step)
        }
        // A descheduled arbiter thread: it resumes 660 µs later, far behind its clock.
        for _ in 0..<20 {
            network.run(for: 150_000, step: 1_000)
            network.arbiterStalledUntil = network.now + 660_000
        }
        network.run(for: 3_000_000, step: 1_000)
        #expect(network.core.statistics.slotsSkipped > 0, "never late: the test does not test skipping")
        let used = UInt64(network.hosts.reduce(0) { $0 + $1.used.count })
        #expect(used == asked, "used \(used) of \(asked) slots asked for")
        Self.checkSchedule(network)
    }

    @Test("an endpoint that resets and asks again is served its need once: the old demand is purged")
    func resetPurges() throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 4, spines: 1))
        var network = try Network(topology: topology, referenceHosts: [])
        _ = network.hosts[0].session.addDemand(to: network.name(of: 1, by: 0), slots: 3_000)
        _ = network.hosts[2].session.addDemand(to: network.name(of: 1, by: 2), slots: 200)
        network.run(for: 1_000_000)
        let before = network.hosts[0].used.count
        #expect(before > 100 && before < 3_000)
        // The endpoint starts a new epoch: the arbiter forgets its demand, and the endpoint
        // asks for what it still needs.
        network.hosts[0].session.forceReset(now: network.now)
        network.run(for: 8_000_000)
        #expect(network.hosts[0].used.count == 3_000, "used \(network.hosts[0].used.count) of 3000")
        #expect(network.hosts[2].used.count == 200)
        #expect(network.core.statistics.endpointResets >= 1)
        #expect(network.core.allocatorStatistics.purgedSlots > 0)
        Self.checkSchedule(network)
    }

    @Test("give-back: demand an endpoint withdraws is not allocated, and the arbiter reports it withdrawn")
    func giveBack() throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 4, spines: 1))
        var network = try Network(topology: topology, referenceHosts: [])
        let to3 = network.name(of: 3, by: 0)
        _ = network.hosts[0].session.addDemand(to: to3, slots: 2_000)
        _ = network.hosts[1].session.addDemand(to: network.name(of: 3, by: 1), slots: 2_000)
        network.run(for: 500_000)
        let kept = network.hosts[0].session.withdrawDemand(to: to3, slots: 1_000)
        #expect(kept == 1_000)
        network.run(for: 6_000_000)
        let used = network.hosts[0].used.count
        let flow = network.hosts[0].session.flow(to: to3)
        #expect(used == 1_000, "used \(used)")
        #expect(flow?.withdrawn ?? 0 > 0, "the arbiter reported no withdrawal")
        #expect(network.hosts[1].used.count == 2_000)
        let arbiterSide = network.core.session(forAddress: topology.addresses[0])?.destination(topology.nodeIDs[3])
        #expect((arbiterSide?.allocated ?? 0) + (arbiterSide?.withdrawn ?? 0) == 2_000)
    }

    @Test("a HELLO claiming another host's identity is refused; unknown senders are dropped and counted")
    func identities() throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 4, spines: 1))
        var network = try Network(topology: topology, referenceHosts: [])
        var c = EndpointSessionConfiguration()
        c.node = topology.nodeIDs[3]  // host 0 claims to be host 3
        c.mode = .extended(fallbackToReference: false)
        network.hosts[0].session = EndpointSession(configuration: c, now: network.now)
        network.run(for: 500_000)
        if case .refused(let reason) = network.hosts[0].session.negotiation {
            #expect(reason == .identityMismatch)
        } else {
            Issue.record("not refused: \(network.hosts[0].session.negotiation)")
        }
        [UInt8](repeating: 0, count: 40).withUnsafeBytes {
            network.core.receive($0, from: Topology.parseIPv4("192.0.2.1")!, now: network.now)
        }
        #expect(network.core.statistics.packetsFromUnknownHosts == 1)
        [UInt8](repeating: 0xA5, count: 40).withUnsafeBytes {
            network.core.receive($0, from: topology.addresses[1], now: network.now)
        }
        #expect(network.core.statistics.packetsDropped == 1)
    }

    /// The core used to stamp a session with the time of its endpoint's first packet:
    /// newer than the RESET in that packet, so the endpoint's RESET lost and its first
    /// request was discarded, a round trip before any allocation.
    @Test("a reference endpoint that starts after the arbiter has its first request served at once")
    func firstReferenceRequestServed() throws {
        let topology = try Self.referenceTopology()
        var network = try Network(topology: topology, referenceHosts: [0, 1])
        // The endpoints start (and stamp their RESETs) 100 µs after the arbiter; their
        // first packets reach it 2 µs after they are sent.
        network.now += 100_000
        for h in 0..<2 {
            var c = EndpointSessionConfiguration()
            c.mode = .reference
            network.hosts[h].session = EndpointSession(configuration: c, now: network.now)
        }
        let asked = network.ask(from: 0, to: 1, slots: 30)
        #expect(asked)
        network.run(for: 5_000)
        let session = try #require(network.core.session(forAddress: topology.addresses[0]))
        #expect(session.connection.statistics.resetBothRecentLastResetWins == 0, "the endpoint's RESET wins")
        #expect(session.destination(NodeID(UInt32(topology.referenceIDs[1])))?.requested == 30)
        // Served within a lookahead and a few packet delays of the first request, not after
        // a second reset round trip.
        network.run(for: 200_000)
        #expect(network.usedPerPair[0 * 64 + 1] == 30)
    }

    /// An endpoint that does not read its allocations (descheduled, overloaded) would get
    /// them too late and the slots would go unused: the core holds it back until it
    /// answers, and the slots go to a sender that can use them.
    @Test(
        "an endpoint that stops answering is held back, its receiver's slots go to one that answers, and it is served again once it speaks"
    )
    func silentEndpointHeld() throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 3, spines: 1))
        var network = try Network(topology: topology, referenceHosts: [])
        for h in 0..<2 {
            let asked = network.ask(from: h, to: 2, slots: 3_000)
            #expect(asked)
        }
        network.run(for: 300_000)
        func used(_ h: Int) -> Int { network.hosts[h].used.count }
        let (before0, before1) = (used(0), used(1))
        #expect(before0 > 0 && before1 > 0)
        network.control.silentUntil[.host(0)] = network.now + 600_000
        network.run(for: 600_000)
        let (during0, during1) = (used(0) - before0, used(1) - before1)
        #expect(network.core.statistics.sourcesHeld > 0)
        // Shared half and half while both answer; the silent one gets far less.
        #expect(during1 > 3 * during0, "silent host used \(during0), answering host \(during1)")
        network.run(for: 20_000_000)
        #expect(network.usedPerPair == [0 * 64 + 2: 3_000, 1 * 64 + 2: 3_000])
        Self.checkSchedule(network)
    }

    @Test("a core called late skips the slots it can no longer allocate, and says so")
    func fallingBehind() throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 4, spines: 1))
        let core = try ArbiterCore(topology: topology, now: 1_000_000_000)
        core.advance(now: 1_000_000_000)
        let before = core.nextSlotToAllocate
        core.advance(now: 1_001_000_000)  // a millisecond later
        #expect(core.statistics.slotsSkipped > 0)
        #expect(core.nextSlotToAllocate > before + 700)
        #expect(core.nextDeadline > 1_001_000_000)
    }

    @Test("the next deadline is defined before the first advance, even with slot 0 now")
    func deadlineBeforeAdvance() throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 4, spines: 1))
        var c = ArbiterCoreConfiguration()
        c.slotOrigin = 5_000
        let core = try ArbiterCore(topology: topology, configuration: c, now: 5_000)
        #expect(core.nextDeadline <= 5_000 + 16 * 1_300)
    }

    @Test("a host that goes away: demand towards it is withdrawn and reported, none allocated after")
    func hostRemoval() throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 4, spines: 1))
        var network = try Network(topology: topology, referenceHosts: [])
        let to3 = network.name(of: 3, by: 0)
        _ = network.hosts[0].session.addDemand(to: to3, slots: 5_000)
        network.run(for: 500_000)
        let before = network.hosts[0].used.filter { $0.destination == 3 }.count
        network.core.removeHost(address: topology.addresses[3])
        network.run(for: 2_000_000)
        let after = network.hosts[0].used.filter { $0.destination == 3 }.count
        // Allocations already sent may still be used; nothing new is made.
        #expect(after - before <= 64, "\(after - before) used after removal")
        let side = network.core.session(forAddress: topology.addresses[0])?.destination(topology.nodeIDs[3])
        #expect((side?.withdrawn ?? 0) > 0, "the removal was not reported as withdrawn")
        #expect((side?.allocated ?? 0) + (side?.withdrawn ?? 0) == side?.released)
        #expect((network.hosts[0].session.flow(to: to3)?.withdrawn ?? 0) > 0, "the endpoint was not told")
    }

    @Test("an extended endpoint without the announced clock is refused where reference numbering cannot work")
    func clocklessRegistration() throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 4, spines: 1))
        var network = try Network(topology: topology, referenceHosts: [])
        network.makeClockless(0)
        network.run(for: 500_000)
        if case .refused(let reason) = network.hosts[0].session.negotiation {
            #expect(reason == .unsupportedVersion)
        } else {
            Issue.record("registered: \(network.hosts[0].session.negotiation)")
        }
    }

    @Test("our slots map to distinct reference slots, and back, at today's wall-clock times too")
    func referenceSlotMapping() throws {
        let picoseconds = UInt64((Topology.referenceTimeslotNanoseconds * 1000).rounded())
        // 2026-11-21, where whole-nanosecond middles of 1251.277 ns slots put two of ours in
        // one reference slot every few slots; a time near a wrap of the reference product;
        // and the start.
        for first: UInt64 in [1_434_744_627_007_000, 35_184_372_088_000, 1_000] {
            var previous: ReferenceSlot?
            for s in first..<(first + 2_000_000) {
                let r = SlotClock.referenceSlot(containingMiddleOf: s, origin: 0, picoseconds: picoseconds)
                if let p = previous, r == p {
                    Issue.record("slots \(s - 1) and \(s) share reference slot \(r)")
                    return
                }
                previous = r
                if s % 997 == 0 {
                    #expect(SlotClock.slot(ofReference: r, near: s &+ 1, origin: 0, picoseconds: picoseconds) == s)
                }
            }
        }
        // The reference's own wrapping formula at the whole nanoseconds around each middle.
        for s: UInt64 in [0, 1_434_744_627_007_541, 14_742_881_867_000_000, 200_000_000_000_000_000] {
            let middle = (UInt128(s) * UInt128(picoseconds) + UInt128(picoseconds / 2)) / 1000
            let r = SlotClock.referenceSlot(containingMiddleOf: s, origin: 0, picoseconds: picoseconds)
            let below = ReferenceSlot(atNanoseconds: UInt64(truncatingIfNeeded: middle))
            let above = ReferenceSlot(atNanoseconds: UInt64(truncatingIfNeeded: middle + 1))
            #expect(r == below || r == above, "slot \(s): \(r), reference \(below)...\(above)")
        }
    }

    @Test("invalid core configuration is refused naming the field")
    func invalid() throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 4, spines: 1))
        var c = ArbiterCoreConfiguration()
        c.lookaheadSlots = 60
        #expect(c.problem(topology: topology)?.hasPrefix("lookaheadSlots") == true)
        #expect(throws: TopologyError.self) { try ArbiterCore(topology: topology, configuration: c, now: 0) }
    }
}

/// The arbiter core with its allocator on threads of its own, paced by the clock. One
/// test at a time: each runs three spinning threads, and a machine with few cores would
/// otherwise starve them and make every batch late.
@Suite("Arbiter core with allocator threads", .serialized)
struct ThreadedArbiterCoreTests {
    /// A fabric whose slots are long enough for the in-memory network, stepping every
    /// host each round, to keep up with the clock in a debug build.
    static func threadedNetwork(spines: Int = 2, startedLate: UInt64 = 0) throws -> ArbiterCoreTests.Network {
        var c = TopologyConfiguration.regular(racks: 2, hostsPerRack: 4, spines: spines)
        c.timeslotNanoseconds = 50_000
        var configuration = ArbiterCoreConfiguration()
        var pipeline = PipelineConfiguration()
        pipeline.stages = 2
        configuration.lookaheadSlots = 32
        configuration.pipeline = pipeline
        return try ArbiterCoreTests.Network(
            topology: try Topology(c), referenceHosts: [], configuration: configuration, acceptLateSlots: 10_000,
            realTime: true, allocatorStartedLate: startedLate)
    }

    /// Runs a real-time network until `done` holds or `limit` ns have passed.
    static func run(
        _ network: inout ArbiterCoreTests.Network, limit: UInt64, until done: (ArbiterCoreTests.Network) -> Bool
    ) {
        let end = network.now + limit
        while network.now < end && !done(network) { network.run(for: 2_000_000) }
    }

    @Test("allocator threads: every endpoint gets exactly the slots it asks for, none double-booked")
    func threadedAllocator() throws {
        var network = try Self.threadedNetwork()
        defer { network.core.stopAllocatorThreads() }
        #expect(network.core.allocatorIsThreaded)
        let asked = network.askEach(stride: 1, count: 3) { h, k in UInt64(40 + 15 * h + 7 * k) }
        let total = asked.values.reduce(0, +)
        Self.run(&network, limit: 8_000_000_000) { $0.usedPerPair.values.reduce(0, +) >= total }
        network.run(for: 3_000_000)  // anything beyond the demand would show now
        let s = network.core.statistics
        #expect(
            network.usedPerPair == asked,
            "used \(network.usedPerPair) of \(asked); core \(s), allocator \(network.core.allocatorStatistics)")
        ArbiterCoreTests.checkSchedule(network)
        #expect(s.batchesAllocated > 0)
        #expect(s.allocationsRecorded >= total)
        #expect(network.core.allocatorStatistics.requestedSlots >= total)
        #expect(network.core.allocatorStatistics.allocatedSlots >= total)
        // No CPUs configured: nothing pinned, nothing failed.
        #expect(network.core.allocatorThreadPinning.pinned == 0 && network.core.allocatorThreadPinning.failed == 0)
        network.core.stopAllocatorThreads()
        // Batches finished before the stop still come in; then nothing more.
        network.run(for: 2_000_000)
        let after = network.core.statistics.batchesAllocated
        network.run(for: 2_000_000)
        #expect(network.core.statistics.batchesAllocated == after, "batches came after the threads stopped")
    }

    @Test(
        "allocator threads: a reset purges the old demand (its batches in flight are dropped), a withdrawal is reported; also after the threads skipped batches",
        arguments: [false, true])
    func threadedResetAndWithdrawal(skipFirst: Bool) throws {
        var network = try Self.threadedNetwork(startedLate: skipFirst ? 500_000_000 : 0)
        defer { network.core.stopAllocatorThreads() }
        let to6 = network.name(of: 6, by: 1)
        for (h, d, n) in [(0, 5, 3_000), (2, 5, 300), (1, 6, 2_000)] {
            let added = network.ask(from: h, to: d, slots: UInt64(n))
            #expect(added)
        }
        // The withdrawal and the reset each wait for their own host: host 1 is alone towards
        // its destination and gets slots faster than host 0, which shares one, so one
        // moment for both let host 1 use more than 500 on a busy machine.
        Self.run(&network, limit: 4_000_000_000) { $0.hosts[1].used.count >= 100 }
        let kept = network.hosts[1].session.withdrawDemand(to: to6, slots: 1_500)
        #expect(kept == 1_500, "host 1 had used \(network.hosts[1].used.count) of 2000")
        Self.run(&network, limit: 4_000_000_000) { $0.hosts[0].used.count >= 200 }
        #expect(network.hosts[0].used.count < 3_000)
        network.hosts[0].session.forceReset(now: network.now)
        let topology = network.topology
        func arbiterSide(_ n: ArbiterCoreTests.Network) -> (allocated: UInt64, withdrawn: UInt64, requested: UInt64) {
            let d = n.core.session(forAddress: topology.addresses[1])?.destination(topology.nodeIDs[6])
            return (d?.allocated ?? 0, d?.withdrawn ?? 0, d?.requested ?? 0)
        }
        Self.run(&network, limit: 8_000_000_000) {
            $0.hosts[0].used.count >= 3_000 && $0.hosts[2].used.count >= 300 && $0.hosts[1].used.count >= 500
                && arbiterSide($0).allocated + arbiterSide($0).withdrawn >= max(2_000, arbiterSide($0).requested)
        }
        network.run(for: 3_000_000)
        #expect(network.hosts[0].used.count == 3_000, "used \(network.hosts[0].used.count) of 3000")
        #expect(network.hosts[2].used.count == 300)
        #expect(network.hosts[1].used.count == 500, "used \(network.hosts[1].used.count) of 500")
        let side = arbiterSide(network)
        #expect(side.withdrawn > 0, "the withdrawal was not reported")
        // Every slot asked for was allocated or withdrawn. Asked for: the 2 000, plus one for
        // every allocation that reached the endpoint too late to use (on a busy machine the
        // threads' batches can be late), which it asks for again.
        #expect(
            side.allocated + side.withdrawn == side.requested && side.requested >= 2_000,
            "allocated \(side.allocated) withdrawn \(side.withdrawn) requested \(side.requested); core \(network.core.statistics)"
        )
        #expect((network.hosts[1].session.flow(to: to6)?.withdrawn ?? 0) > 0, "the endpoint was not told")
        #expect(network.core.statistics.endpointResets >= 1)
        #expect(network.core.allocatorStatistics.purgedSlots > 0)
        // Half a second of 50 µs slots: 10 000 slots skipped at once.
        if skipFirst { #expect(network.core.statistics.slotsSkipped >= 9_000) }
        ArbiterCoreTests.checkSchedule(network)
    }
}
