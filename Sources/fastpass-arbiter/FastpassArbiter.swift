import ArgumentParser
import FastpassDaemon

@main
struct FastpassArbiterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fastpass-arbiter",
        abstract: "The Fastpass arbiter: allocates timeslots and paths to endpoints over FCP.",
        discussion: """
            Reads its configuration (YAML) from --config. Every field can be overridden on the \
            command line: the common ones have their own flags, and --set FIELD=VALUE takes any \
            field by its dotted name (e.g. --set topology.spines=4). Stops cleanly on SIGTERM or \
            SIGINT. Under systemd (Type=notify) it reports READY, STOPPING and feeds the watchdog.
            """)

    @OptionGroup var daemon: DaemonCommandLine<ArbiterDaemonConfiguration>

    @Option(help: "IPv4 address to serve FCP on (field: listen).")
    var listen: String?
    @Option(help: "Packet I/O: sockets or dpdk (field: io; dpdk takes the dpdk section's eal_args).")
    var io: String?
    @Option(help: "ADDRESS:PORT of the HTTP endpoint, or 'none' (field: metrics).")
    var metrics: String?
    @Option(help: "File with the 16-byte FCP key in hex (field: authentication_key_file).")
    var authenticationKeyFile: String?
    @Option(help: "Refuse extended endpoints that do not authenticate: true or false.")
    var requireAuthentication: String?
    @Option(help: "Slots allocated together, 1...64 (field: batch_size).")
    var batchSize: String?
    @Option(help: "Slots ahead of now a batch is allocated, or auto (field: lookahead_slots).")
    var lookaheadSlots: String?
    @Option(help: "Slots ahead of its earliest slot a packet of allocations leaves, or auto (field: send_lead_slots).")
    var sendLeadSlots: String?
    @Option(help: "max-min-fair, shortest-remaining-first, weighted-fair or strict-priority.")
    var policy: String?
    @Option(help: "edge-coloring or euler-split (field: path_selection).")
    var pathSelection: String?
    @Option(help: "CPU for the communication thread (field: cores.communication).")
    var communicationCore: String?
    @Option(help: "SCHED_FIFO priority of the communication thread, 0...99 (field: realtime_priority).")
    var realtimePriority: String?
    @Option(help: "Allocation stages on threads of their own, 0 (inline) or 2+ (field: allocator_threads).")
    var allocatorThreads: String?
    @Option(help: "CPUs for the allocation stages, comma-separated (field: cores.allocator).")
    var allocatorCores: String?
    @Option(help: "CPU for the path-selection thread (field: cores.path).")
    var pathCore: String?
    @Option(help: "Timeslot length in ns (field: topology.timeslot_ns).")
    var timeslotNs: String?
    @OptionGroup var overrides: ConfigurationOverrides

    func run() async throws {
        let flags: KeyValuePairs<String, String?> = [
            "listen": listen, "io": io, "metrics": metrics, "authentication_key_file": authenticationKeyFile,
            "require_authentication": requireAuthentication, "batch_size": batchSize,
            "lookahead_slots": lookaheadSlots, "send_lead_slots": sendLeadSlots, "policy": policy,
            "path_selection": pathSelection, "cores.communication": communicationCore,
            "realtime_priority": realtimePriority, "allocator_threads": allocatorThreads,
            "cores.allocator": allocatorCores, "cores.path": pathCore, "topology.timeslot_ns": timeslotNs,
        ]
        guard let configuration = try daemon.configuration(overrides: overrides, flags: flags) else { return }
        let logger = daemon.startLogging(configuration)
        try await daemon.run(logger: logger) {
            ArbiterDaemon(runtime: try ArbiterRuntime(configuration: configuration, logger: logger), logger: logger)
        }
    }
}
