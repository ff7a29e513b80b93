import ArgumentParser
import FastpassArbiter
import FastpassDaemon
import Foundation
import PacketIO

/// One FCP endpoint on a real network, driven by the project's protocol code: asks the
/// arbiter for a demand and reports, as JSON, every allocation it got. The namespace
/// integration test runs one per host.
struct FCPEndpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fcp-endpoint",
        abstract: "Run one FCP endpoint against a running arbiter and report its allocations as JSON.")

    @Option(help: "The arbiter's configuration file (for the topology and its address).")
    var config: String
    @Option(help: "This endpoint's address (one of the topology's hosts).")
    var endpoint: String
    @Flag(
        help:
            "Speak reference FCP instead of the extended protocol, as the original endpoint does: ALLOC destinations are read raw (path bits are not stripped)."
    )
    var reference = false
    @Option(help: "DESTINATION:SLOTS to ask for; repeatable.")
    var demand: [String] = []
    @Option(help: "Slots an allocation may be late and still be taken (reference FCP: 16).")
    var acceptLate: UInt64 = 16
    @Option(help: "Ask for the demand at this wall-clock time (ns since 1970) instead of at once.")
    var demandAt: UInt64?
    @Option(
        help: ArgumentHelp(
            "When an allocation is judged on time: 'arrival' (when the kernel received its packet, as the original endpoint, a kernel module, sees it) or 'handling' (when this process got to it).",
            valueName: "arrival|handling"))
    var judgeAt = "arrival"
    @Option(help: "Give up after this many seconds.")
    var timeout = 10.0
    @Option(help: "Write the JSON here instead of standard output.")
    var out: String?

    func run() throws {
        let c: ArbiterDaemonConfiguration
        do {
            c = try ArbiterDaemonConfiguration.load(path: config)
        } catch {
            throw ValidationError("\(config): \(error)")
        }
        let topology = try Topology(c.topology)
        guard let a = IPv4.parse(endpoint), let host = topology.index(ofAddress: a) else {
            throw ValidationError("--endpoint \(endpoint): not a host of the topology")
        }
        var plan = EndpointDriver.Plan(host: host, reference: reference, demand: [])
        plan.acceptLateSlots = acceptLate
        plan.demandAt = demandAt
        switch judgeAt {
        case "arrival": plan.judgeAtArrival = true
        case "handling": plan.judgeAtArrival = false
        default: throw ValidationError("--judge-at \(judgeAt): expected 'arrival' or 'handling'")
        }
        for d in demand {
            let parts = d.split(separator: ":")
            guard parts.count == 2, let address = IPv4.parse(String(parts[0])),
                let destination = topology.index(ofAddress: address), let slots = UInt64(parts[1])
            else { throw ValidationError("--demand \(d): expected DESTINATION:SLOTS with a host of the topology") }
            plan.demand.append((destination, slots))
        }
        var io = try RawIPv4Socket(address: a)
        // Stamped either way: the delay from arrival to handling is reported whichever judges.
        try io.enableReceiveTimestamps()
        // Wake at allocations' slots, not up to 50 µs (the default slack) after them.
        PinnedThread.setTimerSlack(nanoseconds: 1_000)
        let driver = EndpointDriver(
            topology: topology, arbiter: c.listen, plan: plan, authenticator: try c.loadAuthenticator(),
            now: RealtimeClock.now())
        let outcome = driver.run(io: &io, timeout: timeout)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = try encoder.encode(outcome)
        if let out {
            try data.write(to: URL(fileURLWithPath: out))
        } else {
            print(String(decoding: data, as: UTF8.self))
        }
        if !outcome.complete { throw ExitCode(3) }
    }
}
