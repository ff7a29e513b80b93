import FastpassArbiter
import Foundation
import PacketIO

/// The daemon's state as JSON documents, for `fastpassctl` and for people with `curl`.
enum StatusReport {
    /// Every stored counter of a statistics struct, by snake_case name.
    static func counters(_ value: Any) -> [(String, UInt64)] {
        Mirror(reflecting: value).children.compactMap { child in
            guard let label = child.label, let v = child.value as? UInt64 else { return nil }
            return (snakeCase(label), v)
        }
    }

    static func snakeCase(_ name: String) -> String {
        var out = ""
        for c in name {
            if c.isUppercase {
                out += "_" + c.lowercased()
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// Quantile `q` of the lateness histogram, as the upper bound of its bucket (ns).
    static func latenessQuantile(_ buckets: [UInt64], _ q: Double) -> UInt64 {
        let total = buckets.reduce(0, &+)
        guard total > 0 else { return 0 }
        let target = UInt64((Double(total) * q).rounded(.up))
        var sum: UInt64 = 0
        for (i, n) in buckets.enumerated() {
            sum &+= n
            if sum >= target { return i == 0 ? 0 : UInt64(1) << UInt64(i) }
        }
        return UInt64(1) << UInt64(buckets.count - 1)
    }

    static func status(_ s: ArbiterSnapshot, runtime: ArbiterRuntime) -> [String: Any] {
        let t = runtime.topology
        var fcp: [String: UInt64] = [:]
        var sessions: [String: UInt64] = [:]
        for e in s.endpoints {
            for (k, v) in counters(e.connection) { fcp[k, default: 0] &+= v }
            for (k, v) in counters(e.session) { sessions[k, default: 0] &+= v }
        }
        return [
            "listen": IPv4.format(runtime.configuration.listen),
            "started_at_ns": s.startedAt,
            "uptime_seconds": s.time > s.startedAt ? Double(s.time - s.startedAt) / 1e9 : 0,
            "current_slot": s.currentSlot,
            "timeslot_ns": t.timeslotNanoseconds,
            "hosts": t.hostCount,
            "endpoints_connected": s.endpoints.filter(\.connected).count,
            "loops": s.loops,
            "busy_ns": s.busyNanoseconds,
            "io_ns": s.ioNanoseconds,
            "packets_from_unknown_sources": s.core.packetsFromUnknownHosts,
            "core": Dictionary(uniqueKeysWithValues: counters(s.core)),
            "allocator": Dictionary(uniqueKeysWithValues: counters(s.allocator)),
            "io": Dictionary(uniqueKeysWithValues: counters(s.io)),
            "fcp": fcp,
            "sessions": sessions,
            "send_rule": [
                "send_lead_slots": s.sendLeadSlots, "lookahead_slots": s.lookaheadSlots,
                "round_trip_p99_seconds": Double(s.roundTripP99Nanoseconds) / 1e9,
                // The earliest slot of each packet of allocations, slots ahead as it left:
                // below the send lead only when the arbiter itself was late.
                "lead_at_send_p1": s.sendLeads.quantile(0.01) ?? 0, "lead_at_send_p10": s.sendLeads.quantile(0.1) ?? 0,
                "lead_at_send_p50": s.sendLeads.quantile(0.5) ?? 0, "lead_at_send_p90": s.sendLeads.quantile(0.9) ?? 0,
                "packets_late_at_send": s.sendLeads.count(below: 0),
            ],
            "slot_lateness_ns": [
                "p50": latenessQuantile(s.lateness, 0.5), "p99": latenessQuantile(s.lateness, 0.99),
                "p999": latenessQuantile(s.lateness, 0.999), "samples": s.lateness.reduce(0, &+),
            ],
        ]
    }

    static func endpoints(_ s: ArbiterSnapshot) -> [[String: Any]] {
        s.endpoints.map { e in
            [
                "address": e.address, "id": e.id, "rack": e.rack, "connected": e.connected, "extended": e.extended,
                "demand_slots": e.session.demandSlots, "allocations_sent": e.session.allocationsSent,
                "allocations_late": e.session.allocationsFellOff,
                "allocations_rejected": e.session.allocationsRejected,
                "withdrawn_slots": e.session.withdrawnSlots, "packets_received": e.connection.rxPackets,
                "checksum_errors": e.connection.rxChecksumError,
                "resets": e.connection.protocolResets &+ e.connection.forcedResets,
            ]
        }
    }

    static func topology(_ t: Topology) -> [String: Any] {
        let c = t.configuration
        return [
            "racks": c.racks, "spines": c.spines, "host_gbps": c.hostLinkGbps,
            "uplink_gbps_per_spine": c.uplinkGbpsPerSpine, "timeslot_ns": t.timeslotNanoseconds,
            "reference_endpoints": c.referenceEndpoints,
            "spines_up": t.spineUp.enumerated().filter { $0.element }.map(\.offset),
            "hosts": c.hosts.map { ["id": $0.id, "address": $0.address, "mac": $0.mac, "rack": $0.rack] },
        ]
    }

    static func json(_ value: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .prettyPrinted]),
            let text = String(data: data, encoding: .utf8)
        else { return "{}" }
        return text + "\n"
    }
}
