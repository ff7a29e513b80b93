import ArgumentParser
import FastpassDaemon

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

    @OptionGroup var daemon: DaemonCommandLine<AgentDaemonConfiguration>
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
    @OptionGroup var overrides: ConfigurationOverrides

    func run() async throws {
        let flags: KeyValuePairs<String, String?> = [
            "arbiter": arbiter, "address": address, "io": io, "node": node, "interface": interface,
            "metrics": metrics, "unreachable.policy": unreachablePolicy, "pacing.mode": pacing,
            "pacing.core": pacingCore,
        ]
        guard let configuration = try daemon.configuration(overrides: overrides, flags: flags) else { return }
        if cleanup {
            // The TUN device lives exactly as long as an agent: while it exists, the rule
            // and routes are that agent's, not leftovers.
            if HostNetwork.deviceExists(configuration.tun) {
                throw daemon.fail(
                    "device \(configuration.tun) exists: an agent is running here; stop it (systemctl stop fastpass-agent) instead of --cleanup",
                    code: 1)
            }
            let removed = HostNetwork.removeLeftovers(configuration)
            print(removed.isEmpty ? "nothing to remove" : "removed: \(removed.joined(separator: ", "))")
            let left = HostNetwork.leftovers(configuration)
            if !left.isEmpty {
                throw daemon.fail("still there: \(left.joined(separator: ", ")) (is an agent running?)", code: 1)
            }
            return
        }
        let logger = daemon.startLogging(configuration)
        try await daemon.run(logger: logger) {
            AgentDaemon(runtime: AgentRuntime(configuration: configuration, logger: logger), logger: logger)
        }
    }
}
