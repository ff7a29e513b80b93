import FastpassStatus
import Foundation
import Testing

/// The counter groups, so one test can go over all of them.
protocol CounterGroup: Codable, Equatable, Sendable {
    init()
}

extension ArbiterCoreCounters: CounterGroup {}
extension AllocatorCounters: CounterGroup {}
extension PacketIOCounters: CounterGroup {}
extension FCPCounters: CounterGroup {}
extension ArbiterSessionCounters: CounterGroup {}
extension EndpointSessionCounters: CounterGroup {}
extension AgentCounters: CounterGroup {}
extension AgentIOCounters: CounterGroup {}

/// The JSON object `value` encodes to.
func object<T: Encodable>(_ value: T) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as? [String: Any])
}

/// `T` from a JSON object.
func decode<T: Decodable>(_ type: T.Type, _ object: Any) throws -> T {
    try StatusJSON.decode(type, from: String(decoding: JSONSerialization.data(withJSONObject: object), as: UTF8.self))
}

/// A group with every counter set to a value of its own (1, 2, 3, ... in key order), and
/// the JSON object it was read from.
func distinct<T: CounterGroup>(_ type: T.Type) throws -> (T, [String: UInt64]) {
    let keys = try object(T()).keys.sorted()
    let values = Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($0.element, UInt64($0.offset + 1)) })
    return (try decode(T.self, values), values)
}

@Suite("Status documents: every field round-trips, under the keys readers use")
struct StatusRoundTripTests {
    /// Today's keys: the snake_case of the statistics structs' property names, which the
    /// integration scripts, docs/operations.md and the Prometheus metric names follow.
    static let counterKeys: [(any CounterGroup.Type, [String])] = [
        (
            ArbiterCoreCounters.self,
            [
                "packets_received", "packets_from_unknown_hosts", "packets_dropped", "packets_out_of_sync",
                "packets_sent", "encode_failures", "demand_to_unknown_destination", "demand_to_self",
                "demand_to_removed_host", "batches_allocated", "slots_skipped", "allocations_recorded",
                "allocations_stale", "allocations_requested_again", "allocations_unencodable", "allocations_unroutable",
                "allocations_off_pinned_spine", "allocator_refusals", "allocations_purged", "allocations_late",
                "commands_delayed", "demand_dropped", "allocations_expired_unsent", "allocation_packets_sent",
                "sources_held", "round_trip_samples", "send_timeout_changes", "packing_changes", "registrations",
                "refusals",
                "endpoint_resets",
            ]
        ),
        (
            AllocatorCounters.self,
            [
                "requested_slots", "refused_slots", "refusals", "allocated_slots", "withdrawn_slots", "purged_slots",
                "unroutable", "lost_slots",
            ]
        ),
        (
            PacketIOCounters.self,
            [
                "received", "receive_batches", "too_long", "bad_header", "sent", "send_batches", "send_dropped",
                "not_for_us", "arp_answered", "arp_requests_sent", "unresolved", "receive_missed",
            ]
        ),
        (
            FCPCounters.self,
            [
                "rx_packets", "rx_too_short", "rx_checksum_error", "rx_unknown_payload", "rx_incomplete_reset",
                "rx_incomplete_alloc", "rx_incomplete_requests", "rx_incomplete_ack", "rx_duplicate_packets",
                "sequence_before_receive_window", "receive_window_jumped", "rx_out_of_order", "too_early_ack",
                "acked_packets", "timeout_packets", "fall_off_out_window", "never_acked_packets", "reset_payloads",
                "redundant_reset", "reset_both_recent_last_reset_wins", "reset_both_recent_payload_wins",
                "reset_last_recent_payload_old", "reset_last_old_payload_recent", "reset_both_old",
                "reset_from_bad_packets", "no_reset_because_recent", "protocol_resets", "forced_resets",
                "committed_packets", "reprogrammed_timer", "timeout_handler_runs", "ack_payloads",
                "informative_ack_payloads", "rx_too_long", "rx_incomplete_extension", "rx_dropped_duplicate",
                "rx_authentication_failed", "rx_stale_epoch", "rx_missing_epoch",
            ]
        ),
        (
            ArbiterSessionCounters.self,
            [
                "destination_table_full", "demand_slots", "withdrawn_slots", "allocations_recorded", "allocations_sent",
                "allocations_fell_off", "allocations_expired_unsent", "allocations_rejected", "allocations_unencodable",
                "demand_deferred", "report_entries_sent", "hellos_received", "registrations", "refusals",
                "unexpected_payloads", "encode_failures", "packets_over_budget", "budgets_sent",
            ]
        ),
        (
            EndpointSessionCounters.self,
            [
                "allocations_admitted", "allocations_too_late", "allocations_premature", "allocations_unwanted",
                "allocations_to_unknown_destinations", "allocations_slot_taken", "illegal_descriptors",
                "allocations_expired", "allocations_used", "allocation_payloads", "allocations_lost",
                "allocations_dropped_by_reset", "reports_for_unknown_destinations", "destination_table_full",
                "unencodable_destinations", "request_entries_sent", "give_back_entries_sent", "hellos_sent",
                "welcomes_received", "refusals", "fallbacks", "ignored_extensions", "rejected_welcomes",
                "encode_failures", "slots_withdrawn", "allocations_arrived_after_loss", "overcounts_corrected",
                "reports_above_request", "budgets_applied", "packets_above_budget", "backoffs", "probes",
            ]
        ),
        (
            AgentCounters.self,
            [
                "packets_queued", "bytes_queued", "dropped_pool_full", "dropped_queue_full", "dropped_oversize",
                "dropped_no_demand", "slots_requested", "slots_used", "slots_missed", "allocations_unused",
                "allocations_for_unknown_peers", "slots_given_back", "packets_released", "releases_after_slot",
                "control_packets_sent", "control_bytes_sent", "control_encode_failures", "packets_unscheduled",
            ]
        ),
        (
            AgentIOCounters.self,
            [
                "tun_packets", "tun_bytes", "tun_read_errors", "egress_packets", "egress_bytes", "egress_errors",
                "bypass_sent", "non_ipv4_dropped", "malformed_dropped", "fcp_received", "fcp_from_others", "fcp_sent",
                "fcp_receive_errors", "fcp_send_errors", "allocations_after_planned_release", "unreachable_events",
                "reachable_again", "unscheduled_direct",
            ]
        ),
    ]

    @Test("each counter group has exactly today's keys")
    func counterGroupKeys() throws {
        for (type, keys) in Self.counterKeys {
            #expect(Set(try object(type.init()).keys) == Set(keys), "\(type)")
            #expect(Set(keys).count == keys.count, "\(type)")
        }
    }

    @Test("every counter keeps its own value through encode and decode")
    func countersRoundTrip() throws {
        func check<T: CounterGroup>(_ type: T.Type) throws {
            let (value, source) = try distinct(type)
            // Each key was read into a field of its own and written back under the same key.
            #expect(try object(value) as? [String: UInt64] == source, "\(type)")
            #expect(try decode(T.self, try object(value)) == value, "\(type)")
        }
        for (type, _) in Self.counterKeys { try check(type) }
    }

    @Test("a counter missing from the JSON is a decoding error that names it, not a 0")
    func missingCounter() throws {
        var o = try object(ArbiterStatus.sample)
        var allocator = try #require(o["allocator"] as? [String: Any])
        allocator["allocated_slots"] = nil
        o["allocator"] = allocator
        let missing = #expect(throws: StatusDecodingError.self) { try decode(ArbiterStatus.self, o) }
        #expect(missing?.description == "missing allocator.allocated_slots")
        var endpoints = try #require(
            JSONSerialization.jsonObject(with: JSONEncoder().encode([EndpointStatus.sample])) as? [[String: Any]])
        endpoints[0]["allocations_sent"] = nil
        let missingInArray = #expect(throws: StatusDecodingError.self) {
            try decode([EndpointStatus].self, endpoints)
        }
        #expect(missingInArray?.description == "missing 0.allocations_sent")
        var agent = try object(AgentStatus.sample)
        agent["packets_released"] = nil
        #expect(throws: StatusDecodingError.self) { try decode(AgentStatus.self, agent) }
    }

    @Test("the arbiter's /status round-trips and keeps its keys")
    func arbiterStatus() throws {
        let s = ArbiterStatus.sample
        #expect(try StatusJSON.decode(ArbiterStatus.self, from: StatusJSON.encode(s)) == s)
        let o = try object(s)
        #expect(
            Set(o.keys) == [
                "listen", "started_at_ns", "uptime_seconds", "current_slot", "timeslot_ns", "hosts",
                "endpoints_connected", "loops", "busy_ns", "io_ns", "packets_from_unknown_sources", "core", "allocator",
                "io", "fcp", "sessions", "send_rule", "slot_lateness_ns", "control_budget",
            ])
        #expect(
            Set((o["send_rule"] as? [String: Any] ?? [:]).keys) == [
                "send_lead_slots", "lookahead_slots", "round_trip_p99_seconds", "lead_at_send_p1", "lead_at_send_p10",
                "lead_at_send_p50", "lead_at_send_p90", "packets_late_at_send",
            ])
        #expect(Set((o["slot_lateness_ns"] as? [String: Any] ?? [:]).keys) == ["p50", "p99", "p999", "samples"])
        #expect(
            Set((o["control_budget"] as? [String: Any] ?? [:]).keys) == [
                "configured_packets_per_second", "capacity_packets_per_second", "share_packets_per_second", "burst",
                "revision",
            ])
    }

    @Test("/endpoints and /topology round-trip and keep their keys")
    func endpointsAndTopology() throws {
        let e = [EndpointStatus.sample]
        #expect(try StatusJSON.decode([EndpointStatus].self, from: StatusJSON.encode(e)) == e)
        #expect(
            Set(try object(EndpointStatus.sample).keys) == [
                "address", "id", "rack", "connected", "extended", "demand_slots", "allocations_sent",
                "allocations_late", "allocations_rejected", "withdrawn_slots", "packets_received", "checksum_errors",
                "resets",
            ])
        let t = TopologyStatus.sample
        #expect(try StatusJSON.decode(TopologyStatus.self, from: StatusJSON.encode(t)) == t)
        let o = try object(t)
        #expect(
            Set(o.keys) == [
                "racks", "spines", "host_gbps", "uplink_gbps_per_spine", "timeslot_ns", "reference_endpoints",
                "spines_up", "hosts",
            ])
        #expect(Set(((o["hosts"] as? [[String: Any]])?.first ?? [:]).keys) == ["id", "address", "mac", "rack"])
    }

    @Test("the agent's /status round-trips, with the core's and the devices' counters at its top level")
    func agentStatus() throws {
        let s = AgentStatus.sample
        #expect(try StatusJSON.decode(AgentStatus.self, from: StatusJSON.encode(s)) == s)
        let o = try object(s)
        let own: Set<String> = [
            "state", "address", "node", "arbiter", "interface", "tun", "peers", "uptime_seconds",
            "arbiter_heard_ago_ms", "timeslot_ns", "packets_waiting", "unreachable_policy", "pacing", "pacing_pinned",
            "fallbacks", "io_backend", "session", "transport", "release_lateness_ns", "bypassed",
        ]
        let flattened = Set(try object(AgentCounters()).keys).union(try object(AgentIOCounters()).keys)
        #expect(own.isDisjoint(with: flattened))
        #expect(Set(o.keys) == own.union(flattened))
        #expect(o["packets_released"] as? UInt64 == s.core.packetsReleased)
        #expect(o["fcp_received"] as? UInt64 == s.io.fcpReceived)
        #expect(Set((o["release_lateness_ns"] as? [String: Any] ?? [:]).keys) == ["p50", "p99"])
    }
}
