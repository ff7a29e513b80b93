import FastpassArbiter
import FastpassStatus
import Foundation
import PacketIO

/// The daemon's state as JSON documents, for `fastpassctl` and for people with `curl`.
enum StatusReport {
    /// Every stored counter of a statistics struct, by snake_case name: the Prometheus
    /// metrics' names, which the status documents' keys match.
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

    static func status(_ s: ArbiterSnapshot, runtime: ArbiterRuntime) -> ArbiterStatus {
        let t = runtime.topology
        var fcp = FCPCounters()
        var sessions = ArbiterSessionCounters()
        for e in s.endpoints {
            fcp.add(FCPCounters(e.connection))
            sessions.add(ArbiterSessionCounters(e.session))
        }
        return ArbiterStatus(
            listen: IPv4.format(runtime.configuration.listen), startedAtNanoseconds: s.startedAt,
            uptimeSeconds: s.time > s.startedAt ? Double(s.time - s.startedAt) / 1e9 : 0, currentSlot: s.currentSlot,
            timeslotNanoseconds: t.timeslotNanoseconds, hosts: t.hostCount,
            endpointsConnected: s.endpoints.filter(\.connected).count, loops: s.loops,
            busyNanoseconds: s.busyNanoseconds,
            ioNanoseconds: s.ioNanoseconds, packetsFromUnknownSources: s.core.packetsFromUnknownHosts,
            core: ArbiterCoreCounters(s.core), allocator: AllocatorCounters(s.allocator), io: PacketIOCounters(s.io),
            fcp: fcp, sessions: sessions,
            sendRule: ArbiterStatus.SendRule(
                sendLeadSlots: s.sendLeadSlots, lookaheadSlots: s.lookaheadSlots,
                roundTripP99Seconds: Double(s.roundTripP99Nanoseconds) / 1e9,
                leadAtSendP1: s.sendLeads.quantile(0.01) ?? 0, leadAtSendP10: s.sendLeads.quantile(0.1) ?? 0,
                leadAtSendP50: s.sendLeads.quantile(0.5) ?? 0, leadAtSendP90: s.sendLeads.quantile(0.9) ?? 0,
                packetsLateAtSend: s.sendLeads.count(below: 0)),
            slotLateness: ArbiterStatus.SlotLateness(
                p50: latenessQuantile(s.lateness, 0.5), p99: latenessQuantile(s.lateness, 0.99),
                p999: latenessQuantile(s.lateness, 0.999), samples: s.lateness.reduce(0, &+)),
            controlBudget: ArbiterStatus.ControlBudget(
                configuredPacketsPerSecond: s.controlConfigured, capacityPacketsPerSecond: s.controlCapacity,
                sharePacketsPerSecond: UInt64(s.controlShare?.packetsPerSecond ?? 0),
                burst: Int(s.controlShare?.burst ?? 0), revision: UInt64(s.controlShare?.revision ?? 0)))
    }

    static func endpoints(_ s: ArbiterSnapshot) -> [EndpointStatus] {
        s.endpoints.map { e in
            EndpointStatus(
                address: e.address, id: e.id, rack: e.rack, connected: e.connected, extended: e.extended,
                demandSlots: e.session.demandSlots, allocationsSent: e.session.allocationsSent,
                allocationsLate: e.session.allocationsFellOff, allocationsRejected: e.session.allocationsRejected,
                withdrawnSlots: e.session.withdrawnSlots, packetsReceived: e.connection.rxPackets,
                checksumErrors: e.connection.rxChecksumError,
                resets: e.connection.protocolResets &+ e.connection.forcedResets)
        }
    }

    static func topology(_ t: Topology) -> TopologyStatus {
        let c = t.configuration
        return TopologyStatus(
            racks: c.racks, spines: c.spines, hostGbps: c.hostLinkGbps, uplinkGbpsPerSpine: c.uplinkGbpsPerSpine,
            timeslotNanoseconds: t.timeslotNanoseconds, referenceEndpoints: c.referenceEndpoints,
            spinesUp: t.spineUp.enumerated().filter { $0.element }.map(\.offset),
            hosts: c.hosts.map { TopologyStatus.Host(id: $0.id, address: $0.address, mac: $0.mac, rack: $0.rack) })
    }

    static func json<T: Encodable>(_ value: T) -> String {
        // Encoding fails only on a NaN or infinite number, which no field can be.
        (try? StatusJSON.encode(value)) ?? "{}\n"
    }
}
