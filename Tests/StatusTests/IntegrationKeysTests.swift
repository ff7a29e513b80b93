import FastpassStatus
import Foundation
import Testing

/// The value at a dotted key path (`core.packets_dropped`) of a JSON object, if there.
func lookup(_ path: String, in object: [String: Any]) -> Any? {
    var current: Any? = object
    for key in path.split(separator: ".") { current = (current as? [String: Any])?[String(key)] }
    return current
}

@Suite("Status documents have every key the integration scripts read")
struct IntegrationKeysTests {
    /// What Tests/Integration/*.sh read from the arbiter's /status (`fastpassctl status --json`).
    static let arbiterStatus = [
        "allocator.allocated_slots", "fcp", "fcp.rx_checksum_error", "fcp.rx_packets",
        "core.packets_from_unknown_hosts",
        "core.packets_dropped", "io", "io.bad_header", "io.unresolved", "send_rule.lead_at_send_p50",
    ]
    /// ... from the arbiter's /endpoints, for each endpoint.
    static let endpoint = ["address", "connected", "extended", "allocations_sent"]
    /// ... from an agent's /status.
    static let agentStatus = [
        "state", "io_backend", "fcp_received", "fcp_sent", "packets_released", "packets_unscheduled",
        "egress_packets", "egress_errors", "fallbacks", "slots_requested", "slots_used", "slots_missed",
        "allocations_unused", "allocations_after_planned_release", "dropped_queue_full", "release_lateness_ns",
        "session.welcomes_received", "transport", "transport.received", "transport.arp_requests_sent",
    ]
    /// ... from `fastpass-bench endpoint`'s outcome → `session`.
    static let endpointSession = ["allocations_to_unknown_destinations", "allocations_too_late", "allocations_expired"]

    @Test("arbiter /status, /endpoints; agent /status; the endpoint driver's session counters")
    func keysPresent() throws {
        func check<T: Encodable>(_ value: T, _ paths: [String]) throws {
            let o = try object(value)
            for path in paths { #expect(lookup(path, in: o) != nil, "\(T.self): \(path)") }
        }
        try check(ArbiterStatus.sample, Self.arbiterStatus)
        try check(EndpointStatus.sample, Self.endpoint)
        try check(AgentStatus.sample, Self.agentStatus)
        try check(EndpointSessionCounters(), Self.endpointSession)
    }

}
