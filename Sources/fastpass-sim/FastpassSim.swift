import ArgumentParser
import FastpassFabric
import Foundation

@main
struct FastpassSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fastpass-sim",
        abstract: "Simulates a leaf–spine fabric with the Fastpass arbiter and agents against a DCTCP-like baseline.",
        subcommands: [Demo.self, Run.self])
}

/// Options shared by `demo` and `run`.
struct FabricOptions: ParsableArguments {
    @Option(help: "Racks (ToR switches).") var racks = 4
    @Option(help: "Hosts per rack.") var hostsPerRack = 16
    @Option(help: "Spine switches.") var spines = 4
    @Option(help: "Host link rate, Gbit/s.") var hostGbps = 10.0
    @Option(help: "Host capacity over uplink capacity per rack (1: full bisection).") var oversubscription = 1.0
    @Option(help: "Propagation delay per link, ns.") var linkDelay: UInt64 = 500
    @Option(help: "Buffer per switch port, bytes.") var buffer = 300_000
    @Option(help: "ECN marking threshold per port, bytes.") var ecnThreshold = 97_500
    @Option(help: "The arbiter's link rate, Gbit/s.") var arbiterGbps = 40.0
    @Option(help: "Least time between two FCP packets from one agent, ns.") var requestInterval: UInt64 = 8_000
    @Option(help: "Traffic: poisson, incast, permutation, all-to-all.") var traffic = "poisson"
    @Option(help: "Flow sizes for poisson traffic: websearch, datamining, or a .cdf file.") var workload = "websearch"
    @Option(help: "Offered load per host link for poisson traffic (0 < load ≤ 1).") var load = 0.6
    @Option(help: "Incast senders.") var senders = 32
    @Option(help: "Bytes per flow for incast, permutation and all-to-all.") var flowBytes = 1_000_000
    @Option(help: "Simulated time, milliseconds.") var milliseconds = 50.0
    @Option(help: "Probability an FCP packet is lost.") var controlLoss = 0.0
    @Option(help: "Probability an FCP packet is duplicated.") var controlDuplication = 0.0
    @Option(help: "Probability an FCP packet is held back 20 µs (reordered).") var controlReordering = 0.0
    @Option(help: "Restart the arbiter at this time, milliseconds.") var arbiterRestart: Double?
    @Option(help: "Take spine S down at time T ms: S:T.") var spineDown: String?
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Systems to run: fastpass, baseline or both.") var system = "both"
    @Option(help: "Write the results as JSON to this file.") var json: String?

    func fabric() throws -> FabricConfiguration {
        var c = FabricConfiguration()
        c.racks = racks
        c.hostsPerRack = hostsPerRack
        c.spines = spines
        c.hostLinkGbps = hostGbps
        c.oversubscription = oversubscription
        c.linkDelayNanoseconds = linkDelay
        c.portBufferBytes = buffer
        c.ecnThresholdBytes = ecnThreshold
        c.seed = seed
        c.arbiterLinkGbps = arbiterGbps
        c.requestIntervalNanoseconds = requestInterval
        guard milliseconds > 0 && milliseconds <= 10_000 else {
            throw ValidationError("--milliseconds must be in (0, 10000] (got \(milliseconds))")
        }
        c.traffic.durationNanoseconds = UInt64(milliseconds * 1e6)
        switch traffic {
        case "poisson": c.traffic.pattern = .poisson(try FlowSizeDistribution.named(workload), load: load)
        case "incast": c.traffic.pattern = .incast(senders: senders, bytes: flowBytes)
        case "permutation": c.traffic.pattern = .permutation(bytes: flowBytes)
        case "all-to-all": c.traffic.pattern = .allToAll(bytes: flowBytes)
        default: throw ValidationError("--traffic must be poisson, incast, permutation or all-to-all (got \(traffic))")
        }
        c.faults.controlLoss = controlLoss
        c.faults.controlDuplication = controlDuplication
        c.faults.controlReordering = controlReordering
        c.faults.arbiterRestartAt = arbiterRestart.map { UInt64($0 * 1e6) }
        if let s = spineDown {
            let parts = s.split(separator: ":")
            guard parts.count == 2, let spine = Int(parts[0]), let t = Double(parts[1]), spine >= 0, spine < spines
            else {
                throw ValidationError("--spine-down must be SPINE:MILLISECONDS with SPINE below \(spines) (got \(s))")
            }
            c.faults.spineDown = (spine, UInt64(t * 1e6))
        }
        if let p = c.problem { throw ValidationError(p) }
        return c
    }

    func systems() throws -> [SimulatedSystem] {
        switch system {
        case "both": return [.fastpass, .baseline]
        default:
            guard let s = SimulatedSystem(rawValue: system) else {
                throw ValidationError("--system must be fastpass, baseline or both (got \(system))")
            }
            return [s]
        }
    }
}

/// Runs every system on one configuration and prints the comparison.
func runAndReport(_ options: FabricOptions, title: String) throws {
    let c = try options.fabric()
    var results: [SystemResult] = []
    print(title)
    for s in try options.systems() {
        FileHandle.standardError.write("  running \(s.rawValue)…\n".data(using: .utf8)!)
        let sim = try Simulation(configuration: c, system: s)
        results.append(sim.run())
    }
    print(ComparisonTable.render(results))
    if let path = options.json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = try encoder.encode(SimulationReport(parameters: ReportParameters(c), systems: results))
        try data.write(to: URL(fileURLWithPath: path))
        print("results: \(path)")
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "64 hosts (4 racks × 16, 4 spines, 10 Gbit/s), web-search traffic at 60 % load, 20 ms, both systems.")

    @Option(help: "Write the results as JSON to this file.") var json = "fastpass-demo.json"

    func run() throws {
        var o = try FabricOptions.parse([])
        o.milliseconds = 20
        o.json = json
        try runAndReport(
            o,
            title:
                "fastpass-sim demo: 64 hosts in 4 racks, 4 spines, 10 Gbit/s links, web-search flows at 60 % load, 20 ms simulated"
        )
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One simulation with every parameter as a flag.")
    @OptionGroup var options: FabricOptions

    func run() throws {
        try runAndReport(options, title: "fastpass-sim run")
    }
}
