import FastpassStatus

/// Documents with every field set, and no two counters of a group alike, so that a field
/// read into the wrong property shows.
extension ArbiterStatus {
    static let sample = ArbiterStatus(
        listen: "10.0.0.1", startedAtNanoseconds: 1_700_000_000_000_000_000, uptimeSeconds: 12.5,
        currentSlot: 123_456, timeslotNanoseconds: 1230.5, hosts: 4, endpointsConnected: 3, loops: 99,
        busyNanoseconds: 7_000_000, ioNanoseconds: 3_000_000, packetsFromUnknownSources: 17,
        core: filled(ArbiterCoreCounters.self), allocator: filled(AllocatorCounters.self),
        io: filled(PacketIOCounters.self), fcp: filled(FCPCounters.self), sessions: filled(ArbiterSessionCounters.self),
        sendRule: SendRule(
            sendLeadSlots: 8, lookaheadSlots: 24, roundTripP99Seconds: 0.000_25, leadAtSendP1: -2, leadAtSendP10: 3,
            leadAtSendP50: 9, leadAtSendP90: 15, packetsLateAtSend: 5),
        slotLateness: SlotLateness(p50: 1024, p99: 65_536, p999: 1 << 20, samples: 4242),
        controlBudget: ControlBudget(
            configuredPacketsPerSecond: 200_000, capacityPacketsPerSecond: 90_000, sharePacketsPerSecond: 87,
            burst: 8, revision: 12))
}

extension EndpointStatus {
    static let sample = EndpointStatus(
        address: "10.0.1.1", id: 7, rack: 1, connected: true, extended: false, demandSlots: 11, allocationsSent: 12,
        allocationsLate: 13, allocationsRejected: 14, withdrawnSlots: 15, packetsReceived: 16, checksumErrors: 17,
        resets: 18)
}

extension TopologyStatus {
    static let sample = TopologyStatus(
        racks: 2, spines: 3, hostGbps: 10, uplinkGbpsPerSpine: 6.5, timeslotNanoseconds: 1230.4,
        referenceEndpoints: true, spinesUp: [0, 2],
        hosts: [Host(id: 1, address: "10.0.1.1", mac: "02:00:00:00:00:01", rack: 0)])
}

extension AgentStatus {
    static let sample = AgentStatus(
        state: "scheduled", address: "10.0.1.1", node: 1, arbiter: "10.0.0.1", interface: "eth0", tun: "fp0",
        peers: 3, uptimeSeconds: 4.25, arbiterHeardAgoMilliseconds: 0.75, timeslotNanoseconds: 1230.4,
        packetsWaiting: 2, unreachablePolicy: "fallback", pacing: "spin", pacingPinned: true, fallbacks: 1,
        ioBackend: "socket", core: filled(AgentCounters.self), io: filled(AgentIOCounters.self),
        session: filled(EndpointSessionCounters.self), transport: filled(PacketIOCounters.self),
        releaseLateness: ReleaseLateness(p50: 128, p99: 4096), bypassed: ["icmp": 3, "control": 0])
}

/// A counter group with every counter distinct. The groups decode from any object with
/// their keys, so this cannot fail unless a group's own encoding is broken, which the
/// round-trip test then reports.
func filled<T: CounterGroup>(_ type: T.Type) -> T {
    (try? distinct(type).0) ?? T()
}
