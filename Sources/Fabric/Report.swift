import Foundation

/// The parameters of a run, as written in the JSON results.
public struct ReportParameters: Codable, Sendable {
    public var racks: Int
    public var hostsPerRack: Int
    public var hosts: Int
    public var spines: Int
    public var hostLinkGbps: Double
    public var oversubscription: Double
    public var linkDelayNanoseconds: UInt64
    public var portBufferBytes: Int
    public var ecnThresholdBytes: Int
    public var traffic: String
    public var workload: String?
    public var load: Double?
    public var flowBytes: Int?
    public var senders: Int?
    public var simulatedMilliseconds: Double
    public var controlLoss: Double
    public var controlDuplication: Double
    public var controlReordering: Double
    public var arbiterRestartMilliseconds: Double?
    public var spineDown: SpineFailure?
    public var arbiterLinkGbps: Double
    public var requestIntervalNanoseconds: UInt64
    /// The arbiter's modelled CPU (``ArbiterCPUConfiguration``).
    public var arbiterCPU: Bool
    public var arbiterPacketNanoseconds: UInt64
    public var arbiterReceiveQueuePackets: Int
    public var arbiterAllocatorCores: Int
    public var arbiterAllocationNanoseconds: Double
    public var arbiterPathNanoseconds: Double
    public var arbiterSlotNanoseconds: Double
    public var seed: UInt64

    /// A spine taken down during the run.
    public struct SpineFailure: Codable, Sendable {
        public var spine: Int
        public var milliseconds: Double
    }

    public init(_ c: FabricConfiguration) {
        racks = c.racks
        hostsPerRack = c.hostsPerRack
        hosts = c.hostCount
        spines = c.spines
        hostLinkGbps = c.hostLinkGbps
        oversubscription = c.oversubscription
        linkDelayNanoseconds = c.linkDelayNanoseconds
        portBufferBytes = c.portBufferBytes
        ecnThresholdBytes = c.ecnThresholdBytes
        switch c.traffic.pattern {
        case .poisson(let d, let l):
            traffic = "poisson"
            workload = d.name
            load = l
        case .incast(let s, let b):
            traffic = "incast"
            senders = s
            flowBytes = b
        case .permutation(let b):
            traffic = "permutation"
            flowBytes = b
        case .allToAll(let b):
            traffic = "all-to-all"
            flowBytes = b
        }
        simulatedMilliseconds = Double(c.traffic.durationNanoseconds) / 1e6
        controlLoss = c.faults.controlLoss
        controlDuplication = c.faults.controlDuplication
        controlReordering = c.faults.controlReordering
        arbiterRestartMilliseconds = c.faults.arbiterRestartAt.map { Double($0) / 1e6 }
        spineDown = c.faults.spineDown.map { SpineFailure(spine: $0.0, milliseconds: Double($0.1) / 1e6) }
        arbiterLinkGbps = c.arbiterLinkGbps
        requestIntervalNanoseconds = c.requestIntervalNanoseconds
        arbiterCPU = c.arbiterCPU.enabled
        arbiterPacketNanoseconds = c.arbiterCPU.packetNanoseconds
        arbiterReceiveQueuePackets = c.arbiterCPU.receiveQueuePackets
        arbiterAllocatorCores = c.arbiterCPU.allocatorCores
        arbiterAllocationNanoseconds = c.arbiterCPU.allocationNanoseconds
        arbiterPathNanoseconds = c.arbiterCPU.pathNanoseconds
        arbiterSlotNanoseconds = c.arbiterCPU.slotNanoseconds
        seed = c.seed
    }
}

/// The JSON results file: the parameters and one entry per system.
public struct SimulationReport: Codable, Sendable {
    public var parameters: ReportParameters
    public var systems: [SystemResult]

    public init(parameters: ReportParameters, systems: [SystemResult]) {
        self.parameters = parameters
        self.systems = systems
    }
}

/// The terminal comparison: one column per system.
public enum ComparisonTable {
    /// Each row's name and one cell per system, as the terminal and the HTML report show them.
    public static func rows(_ results: [SystemResult]) -> [(String, [String])] {
        func kb(_ b: Int) -> String { String(format: "%.1f KB", Double(b) / 1000) }
        let rows: [(String, (SystemResult) -> String)] = [
            ("switch queue p50", { kb($0.queueP50Bytes) }),
            ("switch queue p99", { "\(kb($0.queueP99Bytes)) (\($0.queueP99Packets) pkts)" }),
            ("switch queue max", { "\(kb($0.queueMaxBytes)) (\($0.queueMaxPackets) pkts)" }),
            ("drops (data / control)", { "\($0.dataDrops) / \($0.controlDrops)" }),
            ("throughput", { String(format: "%.1f Gbit/s (%.1f %%)", $0.throughputGbps, $0.utilization * 100) }),
            (
                "inter-rack goodput / offered",
                {
                    String(
                        format: "%.1f / %.1f Gbit/s (%.1f %% of uplinks)", $0.interRackThroughputGbps,
                        $0.interRackOfferedGbps, $0.interRackThroughputGbps / max($0.uplinkCapacityGbps, 1e-9) * 100)
                }
            ),
            ("flows completed", { "\($0.flowsCompleted) of \($0.flowsStarted)" }),
            (
                "slowdown < 100 KB p50 / p99",
                { String(format: "%.2f / %.2f", $0.fctSlowdownP50Small, $0.fctSlowdownP99Small) }
            ),
            ("control overhead", { String(format: "%.3f %% of capacity", $0.controlShare * 100) }),
            (
                "agent wait p50 / p99",
                {
                    $0.system == "fastpass"
                        ? String(format: "%.1f / %.1f µs", $0.agentWaitP50Microseconds, $0.agentWaitP99Microseconds)
                        : "—"
                }
            ),
            (
                "request → allocation p50 / p99",
                {
                    $0.system == "fastpass"
                        ? String(
                            format: "%.1f / %.1f µs", $0.requestToAllocationP50Microseconds,
                            $0.requestToAllocationP99Microseconds)
                        : "—"
                }
            ),
            ("double-booked slots", { $0.system == "fastpass" ? "\($0.doubleBookedSlots)" : "—" }),
            (
                "arbiter FCP rx / tx",
                { r in
                    r.arbiter.map {
                        String(format: "%.0f k / %.0f k pkt/s", $0.receivedPerSecond / 1e3, $0.sentPerSecond / 1e3)
                    }
                        ?? "—"
                }
            ),
            (
                "arbiter comm core busy",
                { r in
                    r.arbiter.map {
                        String(format: "%.1f %%", $0.communicationLoad * 100)
                            + ($0.modelled ? "" : " (needed; not modelled)")
                    } ?? "—"
                }
            ),
            (
                "arbiter receive queue p99 / max",
                { r in r.arbiter.map { "\($0.receiveQueueP99Packets) / \($0.receiveQueueMaxPackets) pkts" } ?? "—" }
            ),
            ("arbiter receive queue drops", { r in r.arbiter.map { "\($0.receiveQueueDrops)" } ?? "—" }),
            (
                "allocator cores needed",
                { r in
                    r.arbiter.map {
                        String(
                            format: "%.2f of %d (%.1f M slots/s, %llu skipped)", $0.allocatorCoresNeeded,
                            $0.allocatorCores,
                            $0.allocationsPerSecond / 1e6, $0.slotsSkipped)
                    } ?? "—"
                }
            ),
            ("retransmission timeouts", { "\($0.retransmissionTimeouts)" }),
            ("events / wall time", { String(format: "%.2f M/s (%.1f s)", $0.eventsPerSecond / 1e6, $0.wallSeconds) }),
        ]
        return rows.map { name, value in (name, results.map(value)) }
    }

    public static func render(_ results: [SystemResult]) -> String {
        let header = [""] + results.map(\.system)
        var table = [header]
        for (name, cells) in rows(results) { table.append([name] + cells) }
        let widths = (0..<header.count).map { col in table.map { $0[col].count }.max() ?? 0 }
        return table.map { row in
            row.enumerated().map { i, cell in cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
