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
    @Option(help: "Largest IPv4 packet, bytes (a timeslot carries one).") var mtu = FabricConfiguration().mtuBytes
    @Option(help: "Share of each timeslot beyond one MTU-sized packet's wire time, for FCP on the links.")
    var slotHeadroom = FabricConfiguration().slotHeadroom
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
    @Option(help: "Cut the arbiter off (every FCP packet to or from it lost) at T ms for D ms: T:D.")
    var arbiterOutage: String?
    @Option(help: "Agents fall back to unscheduled sending after packets waited this long with no answer, ms.")
    var unreachableAfter: Double?
    @Option(help: "Model the arbiter's CPU (per-packet service time, receive queue, allocator cores): on or off.")
    var arbiterCpu = "on"
    @Option(help: "The arbiter's I/O, which sets the default per-packet time: sockets (2 800 ns) or dpdk (700 ns).")
    var arbiterIo = "sockets"
    @Option(
        help: "The arbiter's communication-core time per FCP packet received or sent, ns (default: --arbiter-io's).")
    var arbiterPacketNs: UInt64?
    @Option(help: "FCP packets the arbiter's receive queue holds; more are dropped.") var arbiterRxQueue = 4096
    @Option(help: "The arbiter's control budget: FCP packets per second from all agents together (0: none).")
    var controlBudget: UInt64 = 200_000
    @Option(help: "Cores the arbiter's allocator and path selection run on.") var arbiterAllocatorCores = 2
    @Option(help: "Allocator time per slot allocated, ns.") var arbiterAllocationNs = 7.0
    @Option(help: "Path selection time per slot allocated, ns.") var arbiterPathNs = 3.0
    @Option(help: "Allocator time per slot of a batch, ns.") var arbiterSlotNs = 30.0
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Systems to run: fastpass, baseline or both.") var system = "both"
    @Option(help: "Write the results as JSON to this file.") var json: String?
    @Option(help: "Write an HTML report with SVG plots to this file.") var report: String?

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
        c.controlPacketsPerSecond = controlBudget
        c.slotHeadroom = slotHeadroom
        c.mtuBytes = mtu
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
        if let o = arbiterOutage {
            let parts = o.split(separator: ":")
            guard parts.count == 2, let t = Double(parts[0]), let d = Double(parts[1]), t >= 0, d > 0 else {
                throw ValidationError(
                    "--arbiter-outage must be MILLISECONDS:MILLISECONDS, a start and a duration (got \(o))")
            }
            c.faults.arbiterOutage = (UInt64(t * 1e6), UInt64(d * 1e6))
        }
        if let u = unreachableAfter {
            guard u > 0 else { throw ValidationError("--unreachable-after must be above 0 ms (got \(u))") }
            c.agentUnreachableAfterNanoseconds = UInt64(u * 1e6)
        }
        switch arbiterCpu {
        case "on": c.arbiterCPU.enabled = true
        case "off": c.arbiterCPU.enabled = false
        default: throw ValidationError("--arbiter-cpu must be on or off (got \(arbiterCpu))")
        }
        guard let io = ArbiterCPUConfiguration.IO(rawValue: arbiterIo) else {
            throw ValidationError("--arbiter-io must be sockets or dpdk (got \(arbiterIo))")
        }
        c.arbiterCPU.packetNanoseconds = arbiterPacketNs ?? io.packetNanoseconds
        c.arbiterCPU.receiveQueuePackets = arbiterRxQueue
        c.arbiterCPU.allocatorCores = arbiterAllocatorCores
        c.arbiterCPU.allocationNanoseconds = arbiterAllocationNs
        c.arbiterCPU.pathNanoseconds = arbiterPathNs
        c.arbiterCPU.slotNanoseconds = arbiterSlotNs
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

/// A progress bar on standard error, shown only on a terminal and only once a run has
/// taken two seconds: short runs and logs stay clean.
final class ProgressBar {
    let label: String
    let started = Date()
    var lastDrawn = Date.distantPast
    var shown = false
    let enabled = isatty(STDERR_FILENO) == 1

    init(label: String) { self.label = label }

    func update(_ fraction: Double) {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(started) >= 2, now.timeIntervalSince(lastDrawn) >= 0.2 else { return }
        lastDrawn = now
        shown = true
        let f = min(1, max(0, fraction))
        let filled = Int(f * 30)
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: 30 - filled)
        let elapsed = now.timeIntervalSince(started)
        let left = f > 0.01 ? String(format: ", about %.0f s left", elapsed / f - elapsed) : ""
        FileHandle.standardError.write("\r  \(label) [\(bar)] \(Int(f * 100)) %\(left)   ".data(using: .utf8)!)
    }

    func finish() {
        if shown { FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!) }
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
        let bar = ProgressBar(label: s.rawValue)
        sim.progress = bar.update
        results.append(sim.run())
        bar.finish()
    }
    print(ComparisonTable.render(results))
    let report = SimulationReport(parameters: ReportParameters(c), systems: results)
    if let path = options.json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try write(try encoder.encode(report), to: path, what: "results")
        print("results: \(path)")
    }
    if let path = options.report {
        try write(Data(HTMLReport.render(report).utf8), to: path, what: "report")
        print("report: \(path)")
    }
}

func write(_ data: Data, to path: String, what: String) throws {
    do { try data.write(to: URL(fileURLWithPath: path)) } catch {
        throw ValidationError("cannot write the \(what) to \(path): \(error.localizedDescription)")
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "64 hosts (4 racks × 16, 4 spines, 10 Gbit/s), web-search traffic at 60 % load, 20 ms, both systems; the arbiter's CPU modelled on DPDK."
    )

    @Option(help: "Write the results as JSON to this file.") var json = "fastpass-demo.json"
    @Option(help: "Write the HTML report to this file.") var report = "fastpass-demo.html"

    func run() throws {
        var o = try FabricOptions.parse([])
        o.milliseconds = 20
        // A fabric of 64 hosts at 10 Gbit/s needs an arbiter on DPDK: on raw sockets one
        // communication core takes about 360 k packets a second, a fraction of what this
        // traffic asks (docs/operations.md, "Sizing the arbiter").
        o.arbiterIo = "dpdk"
        o.json = json
        o.report = report
        try runAndReport(
            o,
            title:
                "fastpass-sim demo: 64 hosts in 4 racks, 4 spines, 10 Gbit/s links, web-search flows at 60 % load, 20 ms simulated, the arbiter's CPU modelled on DPDK (700 ns a packet)"
        )
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One simulation with every parameter as a flag or in a configuration file.",
        discussion: """
            --config FILE reads a JSON object whose keys are the flags' names without the dashes, \
            for example {"racks": 8, "workload": "datamining", "milliseconds": 50}. \
            Flags given on the command line override the file.
            """)
    @Option(help: "A JSON file of parameters (keys: the flag names).") var config: String?
    @OptionGroup var options: FabricOptions

    func run() throws {
        var o = options
        if let path = config {
            // The file's keys become flags in front of the command line's, so the command
            // line wins and every value goes through the same parsing and validation.
            let line = CommandLine.arguments
            let after = line.firstIndex(of: "run").map { Array(line[($0 + 1)...]) } ?? []
            o = try FabricOptions.parse(try Self.arguments(fromConfig: path) + after.droppingConfig())
        }
        try runAndReport(o, title: "fastpass-sim run")
    }

    static func arguments(fromConfig path: String) throws -> [String] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ValidationError("--config: cannot read \(path): \(error.localizedDescription)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), let table = object as? [String: Any] else {
            throw ValidationError("--config: \(path) is not a JSON object of parameters")
        }
        var arguments: [String] = []
        for key in table.keys.sorted() {
            let value = table[key]!
            let text: String
            switch value {
            case let n as NSNumber: text = n.stringValue
            case let s as String: text = s
            default: throw ValidationError("--config: \(path): \(key) must be a number or a string")
            }
            guard key != "config" else {
                throw ValidationError("--config: \(path): a file cannot name another (config)")
            }
            arguments.append("--\(key)=\(text)")
        }
        do { _ = try FabricOptions.parse(arguments) } catch {
            throw ValidationError("--config: \(path): \(FabricOptions.message(for: error))")
        }
        return arguments
    }
}

extension Sequence<String> {
    /// The command line without `--config FILE` / `--config=FILE`.
    func droppingConfig() -> [String] {
        var out: [String] = []
        var skip = false
        for a in self {
            if skip {
                skip = false
                continue
            }
            if a == "--config" {
                skip = true
                continue
            }
            if a.hasPrefix("--config=") { continue }
            out.append(a)
        }
        return out
    }
}
