import ArgumentParser
import FastpassDaemon
import Foundation
import Logging
import ServiceLifecycle

@main
struct FastpassAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fastpass-agent",
        abstract: "The Fastpass host agent: holds packets to the fabric's hosts until their timeslot.",
        discussion: """
            Creates a TUN device, routes the configured peers through it (in a routing table of \
            its own, selected by a rule that skips the agent's own marked packets), asks the \
            arbiter for timeslots over FCP and sends each packet out of the interface in its \
            slot. Removes its routes and rule on SIGTERM or SIGINT, and on start removes any an \
            earlier run left. Needs CAP_NET_ADMIN and CAP_NET_RAW. Every configuration field can \
            be overridden: the common ones have flags, --set FIELD=VALUE takes any by its dotted name.
            """)

    @Option(help: "Configuration file (YAML).")
    var config = "/etc/fastpass/agent.yaml"
    @Option(name: .customLong("check-config"), help: "Validate this configuration file, print the result and exit.")
    var checkConfig: String?
    @Flag(help: "Remove the routes and rule an earlier run left (after a crash), then exit.")
    var cleanup = false

    @Option(help: "The arbiter's IPv4 address (field: arbiter).")
    var arbiter: String?
    @Option(help: "This host's IPv4 address on the fabric (field: address).")
    var address: String?
    @Option(help: "Packet I/O for FCP and paced egress: sockets or dpdk (field: io; dpdk takes the dpdk section).")
    var io: String?
    @Option(help: "This host's id in the arbiter's topology (field: node).")
    var node: String?
    @Option(help: "The interface towards the fabric (field: interface).")
    var interface: String?
    @Option(help: "ADDRESS:PORT of the HTTP endpoint, or 'none' (field: metrics).")
    var metrics: String?
    @Option(help: "fallback or hold (field: unreachable.policy).")
    var unreachablePolicy: String?
    @Option(help: "sleep or busy (field: pacing.mode).")
    var pacing: String?
    @Option(help: "CPU for the pacing thread (field: pacing.core).")
    var pacingCore: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical (field: log_level).")
    var logLevel: String?
    @Option(name: .customLong("set"), help: "FIELD=VALUE for any field, by its dotted name. Repeatable.")
    var assignments: [String] = []

    func overrides() throws(ValidationError) -> [(String, String)] {
        var o: [(String, String)] = []
        let flags: [(String, String?)] = [
            ("arbiter", arbiter), ("address", address), ("io", io), ("node", node), ("interface", interface),
            ("metrics", metrics), ("unreachable.policy", unreachablePolicy), ("pacing.mode", pacing),
            ("pacing.core", pacingCore), ("log_level", logLevel),
        ]
        for case (let field, let value?) in flags { o.append((field, value)) }
        for a in assignments {
            guard let eq = a.firstIndex(of: "="), eq != a.startIndex else {
                throw ValidationError("--set \(a): expected FIELD=VALUE")
            }
            o.append((String(a[..<eq]), String(a[a.index(after: eq)...])))
        }
        return o
    }

    static func fail(_ message: String, code: Int32) -> ExitCode {
        FileHandle.standardError.write(Data("fastpass-agent: \(message)\n".utf8))
        return ExitCode(code)
    }

    func run() async throws {
        let overrides = try overrides()
        if let path = checkConfig {
            do {
                let c = try AgentDaemonConfiguration.load(path: path, overrides: overrides)
                print("\(path): valid (\(c.peers.count) peers)")
                return
            } catch {
                throw Self.fail("\(error)", code: 2)
            }
        }
        let configuration: AgentDaemonConfiguration
        do {
            configuration = try AgentDaemonConfiguration.load(path: config, overrides: overrides)
        } catch {
            throw Self.fail("\(error)", code: 2)
        }
        if cleanup {
            // The TUN device lives exactly as long as an agent: while it exists, the rule
            // and routes are that agent's, not leftovers.
            if HostNetwork.deviceExists(configuration.tun) {
                throw Self.fail(
                    "device \(configuration.tun) exists: an agent is running here; stop it (systemctl stop fastpass-agent) instead of --cleanup",
                    code: 1)
            }
            let removed = HostNetwork.removeLeftovers(configuration)
            print(removed.isEmpty ? "nothing to remove" : "removed: \(removed.joined(separator: ", "))")
            let left = HostNetwork.leftovers(configuration)
            if !left.isEmpty {
                throw Self.fail("still there: \(left.joined(separator: ", ")) (is an agent running?)", code: 1)
            }
            return
        }
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "fastpass-agent")
        do {
            let runtime = AgentRuntime(configuration: configuration, logger: logger)
            let group = ServiceGroup(
                services: [AgentDaemon(runtime: runtime, logger: logger)],
                gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
            try await group.run()
        } catch {
            let reason = (error as? AgentStartError)?.reason ?? "\(error)"
            throw Self.fail(reason, code: 1)
        }
    }
}
