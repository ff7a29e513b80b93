/// What a run measures, counted as it goes: queue occupancy per port class, drops, ECN
/// marks, delivered payload, FCP bytes, the agents' waits and request → allocation times,
/// and the checks on scheduled packets; ``result(of:wallSeconds:)`` turns them into a
/// ``SystemResult`` with the flows' completion times.
struct SimulationMetrics {

    var histograms: [OccupancyHistogram]
    var drops: UInt64 = 0
    var dropsByClass = [UInt64](repeating: 0, count: Simulation.PortClass.allCases.count)
    var dataDrops: UInt64 = 0
    var controlDrops: UInt64 = 0
    var ecnMarks: UInt64 = 0
    var deliveredPayload: UInt64 = 0
    var deliveredInterRackPayload: UInt64 = 0
    /// Fastpass data packets that arrived before an earlier packet of their flow, and those
    /// too far ahead (64 packets) for the receiver to hold.
    var reorderedPackets: UInt64 = 0
    var reorderedBeyondWindow: UInt64 = 0
    var controlWireBytes: UInt64 = 0
    var agentWaits = DurationHistogram()
    var requestToAllocation = DurationHistogram()
    var requestToAllocationSkipped: UInt64 = 0
    /// Per (source, destination): packets in the source's agent, and when demand to an idle
    /// destination was raised (0: measured already).
    var packetsInAgentTo: [Int32] = []
    var firstDemandAt: [UInt64] = []
    var doubleBooked: UInt64 = 0
    var reroutedScheduled: UInt64 = 0
    var spinePackets: [UInt64]
    var timeouts: UInt64 = 0
    var processed: UInt64 = 0
    var timeline: [[Double]] = []
    var busiestPort = -1
    var agentUnreachableEvents: UInt64 = 0
    var agentReachableAgainEvents: UInt64 = 0
    var unscheduledPackets: UInt64 = 0
    var controlLostInOutage: UInt64 = 0

    init(spines: Int) {
        histograms = Simulation.PortClass.allCases.map { _ in OccupancyHistogram() }
        spinePackets = [UInt64](repeating: 0, count: spines)
    }

    /// The run's results: queues, drops and throughput from the counters, flow completion
    /// times from the flows.
    func result(of s: Simulation, wallSeconds: Double) -> SystemResult {
        let c = s.configuration
        let seconds = Double(c.traffic.durationNanoseconds) / 1e9
        var all = OccupancyHistogram()
        for cls in [Simulation.PortClass.torDown, .torUp, .spineDown] {
            let h = histograms[cls.rawValue]
            for k in h.bytes.indices { all.bytes[k] &+= h.bytes[k] }
            for k in h.dataBytes.indices { all.dataBytes[k] &+= h.dataBytes[k] }
            for k in h.packets.indices { all.packets[k] &+= h.packets[k] }
            all.noteMaximum(bytes: h.maxBytes, packets: h.maxPackets)
        }
        let summary = all.summary()
        var queues: [String: QueueSummary] = [:]
        for cls in [Simulation.PortClass.torDown, .torUp, .spineDown] {
            queues[cls.name] = histograms[cls.rawValue].summary()
        }

        let rate = c.hostLinkGbps
        let hopsDelay = Double(c.linkDelayNanoseconds)
        var buckets: [(String, Int, Int)] = [
            ("small (< 100 KB)", 0, 100_000), ("medium (100 KB – 10 MB)", 100_000, 10_000_000),
            ("large (≥ 10 MB)", 10_000_000, Int.max),
        ]
        var fct = [[Double]](repeating: [], count: buckets.count)
        var slow = [[Double]](repeating: [], count: buckets.count)
        var completed = 0
        var started = 0
        var rates: [Double] = []
        var interRackOffered = 0
        for flow in s.flows where flow.start < Simulation.origin + c.traffic.durationNanoseconds {
            started += 1
            if s.rackOfEndpoint[Int(flow.source)] != s.rackOfEndpoint[Int(flow.destination)] {
                interRackOffered += flow.bytes
            }
            guard flow.finish > 0 else { continue }
            completed += 1
            let duration = Double(flow.finish - flow.start)
            let sameRack = s.rackOfEndpoint[Int(flow.source)] == s.rackOfEndpoint[Int(flow.destination)]
            let hops = sameRack ? 2.0 : 4.0
            let wire = Double(flow.bytes + Int(flow.packetCount) * (40 + FabricConfiguration.framingBytes))
            let ideal = wire * 8 / rate + (hops - 1) * s.slotNanoseconds + hops * hopsDelay
            let b = buckets.firstIndex { flow.bytes >= $0.1 && flow.bytes < $0.2 } ?? 0
            fct[b].append(duration / 1000)
            slow[b].append(max(1, duration / ideal))
            rates.append(Double(flow.bytes) / duration)
        }
        var flowBuckets: [FlowSummary] = []
        for k in buckets.indices {
            fct[k].sort()
            slow[k].sort()
            flowBuckets.append(
                FlowSummary(
                    bucket: buckets[k].0, flows: fct[k].count, fctP50Microseconds: percentile(fct[k], 0.5),
                    fctP99Microseconds: percentile(fct[k], 0.99), slowdownP50: percentile(slow[k], 0.5),
                    slowdownP99: percentile(slow[k], 0.99)))
        }
        buckets.removeAll()
        let throughput = Double(deliveredPayload) * 8 / seconds / 1e9
        let capacity = Double(s.hostCount) * rate
        var result = SystemResult(
            system: s.system.rawValue, simulatedMilliseconds: seconds * 1000, queueP50Bytes: summary.p50Bytes,
            queueP99Bytes: summary.p99Bytes, queueMaxBytes: summary.maxBytes, queueP99Packets: summary.p99Packets,
            queueMaxPackets: summary.maxPackets, queues: queues, drops: drops, dataDrops: dataDrops,
            controlDrops: controlDrops, ecnMarks: ecnMarks, throughputGbps: throughput,
            utilization: throughput / capacity,
            interRackThroughputGbps: Double(deliveredInterRackPayload) * 8 / seconds / 1e9,
            interRackOfferedGbps: Double(interRackOffered) * 8 / seconds / 1e9,
            uplinkCapacityGbps: Double(c.racks * c.spines) * c.uplinkGbps, flowsStarted: started,
            flowsCompleted: completed,
            fctSlowdownP50Small: flowBuckets[0].slowdownP50, fctSlowdownP99Small: flowBuckets[0].slowdownP99,
            flowBuckets: flowBuckets, jainFairness: rates.isEmpty ? nil : jainIndex(rates),
            controlBytes: controlWireBytes,
            controlShare: Double(controlWireBytes) * 8 / (capacity * 1e9 * seconds),
            agentWaitP50Microseconds: agentWaits.quantileMicroseconds(0.5),
            agentWaitP99Microseconds: agentWaits.quantileMicroseconds(0.99),
            requestToAllocationP50Microseconds: requestToAllocation.quantileMicroseconds(0.5),
            requestToAllocationP99Microseconds: requestToAllocation.quantileMicroseconds(0.99),
            requestToAllocationSkipped: requestToAllocationSkipped,
            doubleBookedSlots: doubleBooked, reorderedPackets: reorderedPackets,
            reorderedBeyondWindow: reorderedBeyondWindow, reroutedScheduledPackets: reroutedScheduled,
            spinePackets: spinePackets,
            retransmissionTimeouts: timeouts,
            agentUnreachableEvents: c.agentUnreachableAfterNanoseconds == nil ? nil : agentUnreachableEvents,
            agentReachableAgainEvents: c.agentUnreachableAfterNanoseconds == nil ? nil : agentReachableAgainEvents,
            unscheduledPackets: c.agentUnreachableAfterNanoseconds == nil ? nil : unscheduledPackets,
            controlLostInOutage: c.faults.arbiterOutage == nil ? nil : controlLostInOutage, events: processed,
            eventsPerSecond: Double(processed) / max(wallSeconds, 1e-9), wallSeconds: wallSeconds,
            queueCDF: all.cdf(), timeline: timeline)
        if s.system == .fastpass {
            result.arbiter = s.cpu.summary(now: s.now, duration: c.traffic.durationNanoseconds)
        }
        return result
    }
}
