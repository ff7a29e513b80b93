import FastpassAgent
import Foundation
import PacketIO

/// What the agent changes on its host, and how it undoes it: the peers' routes through
/// the TUN device in a table of their own, and one rule sending every packet without the
/// agent's mark to that table. The main table is never touched, so removing the rule (or
/// the TUN device going away with a crashed agent, which takes its routes along) gives
/// the host back its ordinary routing.
///
/// Changes go through iproute2 (`ip -batch`), one process per step, so a thousand peers
/// cost one call.
public enum HostNetwork {
    /// A step that failed: the command and what `ip` said.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var step: String
        public var output: String
        public var description: String { "\(step): \(output)" }
    }

    /// The commands (for `ip -batch`) that route the peers through the TUN device.
    static func setUpCommands(_ c: AgentDaemonConfiguration, tun: String) -> [String] {
        var lines = [
            // No IPv6 link-local address: the device carries the fabric's IPv4 only.
            "link set dev \(tun) addrgenmode none",
            "link set dev \(tun) mtu \(c.slotBytes) txqueuelen 1000 up",
        ]
        let source = IPv4.format(c.address)
        for p in c.peers {
            lines.append("route replace \(IPv4.format(p.address))/32 dev \(tun) src \(source) table \(c.routingTable)")
        }
        lines.append(
            "rule add not fwmark \(String(format: "0x%x", c.mark)) lookup \(c.routingTable) priority \(c.rulePriority)")
        return lines
    }

    /// Routes the peers through `tun` (which must exist and be held open by the caller).
    /// On failure, undoes what it did.
    public static func setUp(_ c: AgentDaemonConfiguration, tun: String) throws(Failure) {
        do {
            try ip(
                ["-batch", "-"], input: setUpCommands(c, tun: tun).joined(separator: "\n") + "\n",
                step: "route the peers through \(tun)")
        } catch {
            _ = removeLeftovers(c)
            throw error
        }
    }

    /// Removes the rule and the table's routes: what an earlier run left if it crashed,
    /// or this run's on stop. Returns what it found and removed, for the log.
    @discardableResult
    public static func removeLeftovers(_ c: AgentDaemonConfiguration) -> [String] {
        var removed: [String] = []
        // Only the rule at our priority that points at our table: another rule there is
        // not ours to delete.
        for _ in 0..<64 {
            guard
                (try? ip(["rule", "del", "priority", "\(c.rulePriority)", "lookup", "\(c.routingTable)"], step: ""))
                    != nil
            else { break }
            removed.append("rule priority \(c.rulePriority) lookup \(c.routingTable)")
        }
        let routes = (try? ip(["-4", "route", "show", "table", "\(c.routingTable)"], step: "")) ?? ""
        let count = routes.split(separator: "\n").count
        if count > 0 {
            _ = try? ip(["-4", "route", "flush", "table", "\(c.routingTable)"], step: "")
            removed.append("\(count) route(s) in table \(c.routingTable)")
        }
        return removed
    }

    /// Whether a network device of this name exists in the agent's namespace.
    public static func deviceExists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: "/sys/class/net/\(name)")
    }

    /// What is left on the host of the agent's changes (empty: nothing).
    public static func leftovers(_ c: AgentDaemonConfiguration) -> [String] {
        var left: [String] = []
        let rules = (try? ip(["rule", "show", "priority", "\(c.rulePriority)"], step: "")) ?? ""
        if rules.contains("lookup \(c.routingTable)") { left.append("rule priority \(c.rulePriority)") }
        let routes = (try? ip(["-4", "route", "show", "table", "\(c.routingTable)"], step: "")) ?? ""
        if !routes.isEmpty { left.append("routes in table \(c.routingTable)") }
        if deviceExists(c.tun) { left.append("device \(c.tun)") }
        return left
    }

    /// Why the host cannot run the agent as configured (nil: it can): the interface
    /// exists, and strict reverse-path filtering would not drop the peers' packets (their
    /// route back points at the TUN device, not at the interface they arrive on).
    public static func problem(_ c: AgentDaemonConfiguration) -> String? {
        // A NIC given to DPDK is no longer the kernel's.
        guard c.io == .dpdk || deviceExists(c.interface) else {
            return "interface: no interface named \(c.interface) on this host"
        }
        func filter(_ name: String) -> Int {
            let path = "/proc/sys/net/ipv4/conf/\(name)/rp_filter"
            return (try? String(contentsOfFile: path, encoding: .utf8)).flatMap {
                Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
            } ?? 0
        }
        if max(filter("all"), filter(c.interface)) == 1 {
            return
                "strict reverse-path filtering (rp_filter=1) on \(c.interface) would drop packets from the peers, whose route back goes through \(c.tun): set net.ipv4.conf.all.rp_filter and net.ipv4.conf.\(c.interface).rp_filter to 2 (loose) or 0"
        }
        return nil
    }

    /// Runs `ip` with `arguments`; returns its output, or throws what it said.
    @discardableResult
    static func ip(_ arguments: [String], input: String? = nil, step: String) throws(Failure) -> String {
        guard
            let tool = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else {
            throw Failure(step: step, output: "iproute2's 'ip' is not installed (apt-get install iproute2)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let output = Pipe()
        let stdin = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = stdin
        do {
            try process.run()
        } catch {
            throw Failure(step: step, output: "cannot run \(tool): \(error)")
        }
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try? stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0 else {
            throw Failure(step: step, output: text.isEmpty ? "ip exited with \(process.terminationStatus)" : text)
        }
        return text
    }
}
