import ArgumentParser
import FastpassStatus
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

    /// The document at `path` of `daemon` as `T`; nil after printing it as it came, with `--json`.
    func fetch<T: Decodable>(_ path: String, of daemon: String = "fastpass-arbiter", as type: T.Type) throws -> T? {
        let body = try HTTPGet.fetch(address: address, path: path, timeout: timeout)
        if json {
            print(body, terminator: body.hasSuffix("\n") ? "" : "\n")
            return nil
        }
        do {
            return try StatusJSON.decode(type, from: body)
        } catch let error as StatusDecodingError {
            throw CtlError("\(address)\(path): \(error) (is it a \(daemon) of this version?)")
        } catch {
            throw CtlError("\(address)\(path): the reply is not JSON")
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The arbiter's state and main counters.")
    @OptionGroup var connection: Connection

    func run() throws {
        guard let s = try connection.fetch("/status", as: ArbiterStatus.self) else { return }
        let (core, allocator, io, late) = (s.core, s.allocator, s.io, s.slotLateness)
        let rows: [(String, String)] = [
            ("listen", s.listen),
            ("uptime (s)", String(format: "%.1f", s.uptimeSeconds)),
            ("current slot", "\(s.currentSlot)"), ("timeslot (ns)", Table.number(s.timeslotNanoseconds)),
            ("endpoints connected", "\(s.endpointsConnected) of \(s.hosts)"),
            ("packets received / sent", "\(core.packetsReceived) / \(core.packetsSent)"),
            ("packets dropped (bad / unknown host)", "\(core.packetsDropped) / \(core.packetsFromUnknownHosts)"),
            ("datagrams malformed / too long", "\(io.badHeader) / \(io.tooLong)"),
            ("demand (slots)", "\(allocator.requestedSlots)"), ("allocated (slots)", "\(allocator.allocatedSlots)"),
            ("batches allocated", "\(core.batchesAllocated)"), ("slots skipped (late)", "\(core.slotsSkipped)"),
            ("registrations / resets", "\(core.registrations) / \(core.endpointResets)"),
            ("slot lateness p50 / p99 (ns)", "\(late.p50) / \(late.p99)"),
        ]
        Table.print(header: ["field", "value"], rows: rows.map { [$0.0, $0.1] })
    }
}

struct Endpoints: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Per-endpoint demand, allocations and lateness.")
    @OptionGroup var connection: Connection

    func run() throws {
        guard let list = try connection.fetch("/endpoints", as: [EndpointStatus].self) else { return }
        Table.print(
            header: ["address", "id", "rack", "up", "ext", "demand", "allocated", "late", "rejected", "rx", "resets"],
            rows: list.map { e in
                [
                    e.address, "\(e.id)", "\(e.rack)", Table.flag(e.connected), Table.flag(e.extended),
                    "\(e.demandSlots)", "\(e.allocationsSent)", "\(e.allocationsLate)", "\(e.allocationsRejected)",
                    "\(e.packetsReceived)", "\(e.resets)",
                ]
            })
    }
}

struct Topology: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The fabric the arbiter schedules.")
    @OptionGroup var connection: Connection

    func run() throws {
        guard let t = try connection.fetch("/topology", as: TopologyStatus.self) else { return }
        print(
            "racks \(t.racks), spines \(t.spines) (up: \(t.spinesUp.map(String.init).joined(separator: ","))), "
                + "hosts at \(Table.number(t.hostGbps)) Gbit/s, uplinks \(Table.number(t.uplinkGbpsPerSpine)) "
                + "Gbit/s per spine, timeslot \(Table.number(t.timeslotNanoseconds)) ns, reference endpoints "
                + Table.flag(t.referenceEndpoints))
        Table.print(
            header: ["id", "address", "mac", "rack"],
            rows: t.hosts.map { h in ["\(h.id)", h.address, h.mac, "\(h.rack)"] })
    }
}

struct Agent: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A host agent's state: arbiter reachability, packets held, released, sent unscheduled.")
    @OptionGroup var connection: Connection

    func run() throws {
        guard let s = try connection.fetch("/status", of: "fastpass-agent", as: AgentStatus.self) else { return }
        let (core, io, late) = (s.core, s.io, s.releaseLateness)
        let rows: [(String, String)] = [
            ("state", s.state),
            ("host / node", "\(s.address) / \(s.node)"),
            ("arbiter (heard ms ago)", "\(s.arbiter) (\(Table.number(s.arbiterHeardAgoMilliseconds)))"),
            ("interface / tun", "\(s.interface) / \(s.tun)"), ("peers", "\(s.peers)"),
            ("timeslot (ns)", Table.number(s.timeslotNanoseconds)), ("packets waiting", "\(s.packetsWaiting)"),
            ("packets queued / released", "\(core.packetsQueued) / \(core.packetsReleased)"),
            (
                "slots requested / used / missed",
                "\(core.slotsRequested) / \(core.slotsUsed) / \(core.slotsMissed)"
            ),
            ("sent unscheduled / bypassing", "\(core.packetsUnscheduled) / \(io.bypassSent)"),
            ("dropped (queue full / pool full)", "\(core.droppedQueueFull) / \(core.droppedPoolFull)"),
            ("egress errors", "\(io.egressErrors)"),
            ("release lateness p50 / p99 (ns)", "\(late.p50) / \(late.p99)"),
            ("fallbacks (policy)", "\(s.fallbacks) (\(s.unreachablePolicy))"),
        ]
        Table.print(header: ["field", "value"], rows: rows.map { [$0.0, $0.1] })
    }
}

enum Table {
    /// A number as the JSON showed it: whole values without a fraction.
    static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : "\(v)"
    }

    static func flag(_ v: Bool) -> String { v ? "yes" : "no" }

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
