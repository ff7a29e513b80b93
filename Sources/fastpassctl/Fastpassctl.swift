import ArgumentParser
import FastpassStatusClient
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

@main
struct Fastpassctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fastpassctl",
        abstract: "Reads a running fastpass-arbiter or fastpass-agent over its HTTP endpoint.",
        subcommands: [Status.self, Endpoints.self, Topology.self, Agent.self])
}

struct Connection: ParsableArguments {
    @Option(help: "The daemon's HTTP endpoint, ADDRESS:PORT (its 'metrics' field; the agent's is usually 9465).")
    var address = "127.0.0.1:9464"
    @Flag(help: "Print the daemon's JSON instead of a table.")
    var json = false
    @Option(help: "Seconds to wait for the daemon.")
    var timeout = 3.0

    func fetch(_ path: String) throws -> Any {
        let body = try HTTPGet.fetch(address: address, path: path, timeout: timeout)
        if json {
            print(body, terminator: body.hasSuffix("\n") ? "" : "\n")
            return NSNull()
        }
        guard let data = body.data(using: .utf8), let value = try? JSONSerialization.jsonObject(with: data) else {
            throw CtlError("\(address)\(path): the reply is not JSON")
        }
        return value
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The arbiter's state and main counters.")
    @OptionGroup var connection: Connection

    func run() throws {
        guard let s = try connection.fetch("/status") as? [String: Any] else { return }
        let core = s["core"] as? [String: Any] ?? [:]
        let allocator = s["allocator"] as? [String: Any] ?? [:]
        let io = s["io"] as? [String: Any] ?? [:]
        let late = s["slot_lateness_ns"] as? [String: Any] ?? [:]
        let rows: [(String, Any?)] = [
            ("listen", s["listen"]),
            ("uptime (s)", (s["uptime_seconds"] as? Double).map { String(format: "%.1f", $0) }),
            ("current slot", s["current_slot"]), ("timeslot (ns)", s["timeslot_ns"]),
            ("endpoints connected", "\(s["endpoints_connected"] ?? 0) of \(s["hosts"] ?? 0)"),
            ("packets received / sent", "\(core["packets_received"] ?? 0) / \(core["packets_sent"] ?? 0)"),
            (
                "packets dropped (bad / unknown host)",
                "\(core["packets_dropped"] ?? 0) / \(core["packets_from_unknown_hosts"] ?? 0)"
            ),
            ("datagrams malformed / too long", "\(io["bad_header"] ?? 0) / \(io["too_long"] ?? 0)"),
            ("demand (slots)", allocator["requested_slots"]), ("allocated (slots)", allocator["allocated_slots"]),
            ("batches allocated", core["batches_allocated"]), ("slots skipped (late)", core["slots_skipped"]),
            ("registrations / resets", "\(core["registrations"] ?? 0) / \(core["endpoint_resets"] ?? 0)"),
            ("slot lateness p50 / p99 (ns)", "\(late["p50"] ?? 0) / \(late["p99"] ?? 0)"),
        ]
        Table.print(header: ["field", "value"], rows: rows.map { [$0.0, $0.1.map { "\($0)" } ?? "-"] })
    }
}

struct Endpoints: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Per-endpoint demand, allocations and lateness.")
    @OptionGroup var connection: Connection

    func run() throws {
        guard let list = try connection.fetch("/endpoints") as? [[String: Any]] else { return }
        let keys = [
            "address", "id", "rack", "connected", "extended", "demand_slots", "allocations_sent", "allocations_late",
            "allocations_rejected", "packets_received", "resets",
        ]
        Table.print(
            header: ["address", "id", "rack", "up", "ext", "demand", "allocated", "late", "rejected", "rx", "resets"],
            rows: list.map { e in
                keys.map { k in k == "connected" || k == "extended" ? Table.flag(e[k]) : Table.cell(e[k]) }
            })
    }
}

struct Topology: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The fabric the arbiter schedules.")
    @OptionGroup var connection: Connection

    func run() throws {
        guard let t = try connection.fetch("/topology") as? [String: Any] else { return }
        print(
            "racks \(Table.cell(t["racks"])), spines \(Table.cell(t["spines"])) (up: \(Table.cell(t["spines_up"]))), "
                + "hosts at \(Table.cell(t["host_gbps"])) Gbit/s, uplinks \(Table.cell(t["uplink_gbps_per_spine"])) "
                + "Gbit/s per spine, timeslot \(Table.cell(t["timeslot_ns"])) ns, reference endpoints "
                + Table.flag(t["reference_endpoints"]))
        let hosts = t["hosts"] as? [[String: Any]] ?? []
        Table.print(
            header: ["id", "address", "mac", "rack"],
            rows: hosts.map { h in ["id", "address", "mac", "rack"].map { Table.cell(h[$0]) } })
    }
}

struct Agent: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A host agent's state: arbiter reachability, packets held, released, sent unscheduled.")
    @OptionGroup var connection: Connection

    func run() throws {
        guard let s = try connection.fetch("/status") as? [String: Any] else { return }
        let late = s["release_lateness_ns"] as? [String: Any] ?? [:]
        func pair(_ a: String, _ b: String) -> String { "\(Table.cell(s[a])) / \(Table.cell(s[b]))" }
        let rows: [(String, String)] = [
            ("state", Table.cell(s["state"])),
            ("host / node", pair("address", "node")),
            ("arbiter (heard ms ago)", "\(Table.cell(s["arbiter"])) (\(Table.cell(s["arbiter_heard_ago_ms"])))"),
            ("interface / tun", pair("interface", "tun")), ("peers", Table.cell(s["peers"])),
            ("timeslot (ns)", Table.cell(s["timeslot_ns"])), ("packets waiting", Table.cell(s["packets_waiting"])),
            ("packets queued / released", pair("packets_queued", "packets_released")),
            (
                "slots requested / used / missed",
                "\(pair("slots_requested", "slots_used")) / \(Table.cell(s["slots_missed"]))"
            ),
            ("sent unscheduled / bypassing", pair("packets_unscheduled", "bypass_sent")),
            ("dropped (queue full / pool full)", pair("dropped_queue_full", "dropped_pool_full")),
            ("egress errors", Table.cell(s["egress_errors"])),
            ("release lateness p50 / p99 (ns)", "\(Table.cell(late["p50"])) / \(Table.cell(late["p99"]))"),
            ("fallbacks (policy)", "\(Table.cell(s["fallbacks"])) (\(Table.cell(s["unreachable_policy"])))"),
        ]
        Table.print(header: ["field", "value"], rows: rows.map { [$0.0, $0.1] })
    }
}

enum Table {
    static func cell(_ v: Any?) -> String {
        switch v {
        case nil: "-"
        case let a as [Any]: a.map { "\($0)" }.joined(separator: ",")
        default: "\(v!)"
        }
    }

    /// A yes/no field (JSON booleans and numbers look alike once decoded here).
    static func flag(_ v: Any?) -> String { (v as? Bool).map { $0 ? "yes" : "no" } ?? "-" }

    static func print(header: [String], rows: [[String]]) {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        Swift.print(line(header))
        Swift.print(line(widths.map { String(repeating: "-", count: $0) }))
        for r in rows { Swift.print(line(r)) }
    }
}

/// A failure to report in one line, without the usage text.
struct CtlError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
