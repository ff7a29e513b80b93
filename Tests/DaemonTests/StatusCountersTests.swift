import FastpassAgent
import FastpassArbiter
import FastpassProtocol
import FastpassStatus
import Foundation
import Logging
import PacketIO
import Testing

@testable import FastpassDaemon

/// `value` with every stored word set to a number of its own (1, 2, 3, ...). The
/// statistics structs hold nothing but `UInt64`s (histograms included), so this reaches
/// every counter without naming one.
func distinctCounters<T>(_ value: T) -> T {
    precondition(MemoryLayout<T>.size % 8 == 0 && MemoryLayout<T>.alignment == 8)
    var v = value
    withUnsafeMutableBytes(of: &v) { bytes in
        for i in 0..<bytes.count / 8 { bytes.storeBytes(of: UInt64(i + 1), toByteOffset: i * 8, as: UInt64.self) }
    }
    return v
}

/// The counters a status group encodes, by key.
func encodedCounters<T: Encodable>(_ value: T) throws -> [String: UInt64] {
    try #require(JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as? [String: UInt64])
}

@Suite("Status counters: every statistics counter reaches the status documents under its metric name")
struct StatusCountersTests {
    /// Reflection over the statistics structs names the Prometheus metrics; the status
    /// groups are written out field by field. They must agree key for key and value for
    /// value, so a counter added to a statistics struct and not to its group fails here.
    @Test("each status group carries exactly its statistics struct's counters")
    func groupsMatchStatistics() throws {
        func check<S, G: Encodable>(_ statistics: S, _ group: (S) -> G) throws {
            let s = distinctCounters(statistics)
            let reflected = Dictionary(uniqueKeysWithValues: StatusReport.counters(s))
            #expect(try encodedCounters(group(s)) == reflected, "\(S.self)")
        }
        try check(ArbiterCoreStatistics(), ArbiterCoreCounters.init)
        try check(TimeslotAllocatorStatistics(), AllocatorCounters.init)
        try check(PacketIOStatistics(), PacketIOCounters.init)
        try check(FCPConnectionStatistics(), FCPCounters.init)
        try check(ArbiterSessionStatistics(), ArbiterSessionCounters.init)
        try check(EndpointSessionStatistics(), EndpointSessionCounters.init)
        try check(AgentStatistics(), AgentCounters.init)
        try check(AgentIOStatistics(), AgentIOCounters.init)
    }

    @Test("the agent's /status, from a snapshot, decodes and has what the integration scripts read")
    func agentReport() throws {
        let c = try AgentDaemonConfiguration.parse(yaml: AgentDaemonConfigurationTests.valid, file: "t")
        var s = AgentSnapshot()
        s.core = distinctCounters(s.core)
        s.io = distinctCounters(s.io)
        s.state = .scheduled
        let text = StatusReport.json(AgentReport.status(s, c))
        let decoded = try StatusJSON.decode(AgentStatus.self, from: text)
        #expect(decoded.core.packetsReleased == s.core.packetsReleased && decoded.io.fcpSent == s.io.fcpSent)
        #expect(decoded.bypassed.count == BypassReason.allCases.count)
        #expect(decoded.state == "scheduled")
    }

    @Test("the arbiter's /status sums the endpoints' connection and session counters")
    func arbiterReport() throws {
        let c = try ArbiterDaemonConfiguration.parse(yaml: ConfigurationTests.valid, file: "t")
        let runtime = try ArbiterRuntime(configuration: c, logger: .init(label: "test"))
        var s = runtime.snapshot()
        for i in s.endpoints.indices {
            s.endpoints[i].connection.timeoutPackets = UInt64(i + 1)
            s.endpoints[i].session.allocationsSent = UInt64(10 * (i + 1))
        }
        s.allocator.allocatedSlots = 77
        let status = try StatusJSON.decode(
            ArbiterStatus.self, from: StatusReport.json(StatusReport.status(s, runtime: runtime)))
        #expect(status.fcp.timeoutPackets == 3 && status.sessions.allocationsSent == 30)
        #expect(status.allocator.allocatedSlots == 77 && status.hosts == 2 && status.listen == "10.0.0.1")
        let endpoints = try StatusJSON.decode([EndpointStatus].self, from: StatusReport.json(StatusReport.endpoints(s)))
        #expect(endpoints.map(\.allocationsSent) == [10, 20])
        let topology = try StatusJSON.decode(
            TopologyStatus.self, from: StatusReport.json(StatusReport.topology(runtime.topology)))
        #expect(topology.hosts.map(\.address) == ["10.0.1.1", "10.0.2.1"] && topology.spinesUp == [0, 1])
    }
}
