import ArgumentParser
import FastpassArbiter
import FastpassDaemon
import FastpassProtocol
import FastpassStatus
import FastpassStatusClient
import Foundation
import PacketIO
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Loads a real `fastpass-arbiter` with many FCP endpoints over loopback and measures what
/// its communication thread handles: FCP packets per second, the share of its time spent
/// working, and how long a request waits for its allocation.
///
/// The endpoints are the project's own `EndpointSession`s (extended protocol), all run by
/// one pinned generator thread. They send from addresses 127.1.0.1, 127.1.0.2, ... through
/// one header-included raw socket and receive through one raw socket that a kernel filter
/// limits to those addresses; the arbiter listens on 127.0.0.1 and runs as its own process,
/// pinned to another core.
struct FCPLoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fcp-load",
        abstract: "Load a fastpass-arbiter with simulated FCP endpoints on loopback and measure it (needs root).")

    @Option(help: "Simulated endpoints (hosts of the topology).")
    var hosts = 64
    @Option(help: "Hosts per rack.")
    var hostsPerRack = 16
    @Option(help: "Spines.")
    var spines = 4
    @Option(help: "Destinations each endpoint keeps demand towards.")
    var destinations = 4
    @Option(help: "Slots each endpoint keeps requested per destination (topped up at half).")
    var outstanding: UInt64 = 64
    @Option(
        help:
            "Offered load instead of a closed loop: slots per second each endpoint asks for per destination, whatever comes back (0: keep --outstanding requested)."
    )
    var flowSlotsPerSecond: Double = 0
    @Option(
        help:
            "Slots an allocation may arrive late and still be taken (reference FCP: 16). A generator loaded as heavily as the arbiter delays packets beyond the reference's 20 µs."
    )
    var acceptLate: UInt64 = 150
    @Option(help: "Host link rate (Gbit/s): with the 1500-byte slot it sets the timeslot.")
    var hostGbps = 10.0
    @Option(
        help: ArgumentHelp(
            "The arbiter's control budget, FCP packets per second from all endpoints together (0: none).",
            valueName: "packets/s"))
    var controlBudget: Int = 200_000
    @Option(help: "The arbiter's batch size (slots).")
    var batchSize = 16
    @Option(help: "The arbiter's lookahead (slots), or auto.")
    var lookaheadSlots = "auto"
    @Option(help: "Seconds of load before measuring.")
    var warmup = 1.0
    @Option(help: "Seconds measured per run.")
    var duration = 5.0
    @Option(help: "Runs (the arbiter is started afresh for each); the report gives their median.")
    var runs = 3
    @Option(help: "The fastpass-arbiter binary (default: next to this one).")
    var arbiter: String?
    @Option(help: "CPU for the arbiter's communication thread.")
    var arbiterCore = 1
    @Option(help: "CPU for the generator thread.")
    var generatorCore = 0
    @Option(help: "The arbiter's allocator threads: 0 inline, 2+ stages plus a path thread (unpinned).")
    var allocatorThreads = 0
    @Option(help: "Port of the arbiter's HTTP endpoint on 127.0.0.1.")
    var metricsPort = 19464
    @Flag(help: "Print JSON instead of a table.")
    var json = false
    @Flag(
        help:
            "Measure only what the kernel allows: one pinned thread sending 64-byte datagrams in batches of 32 over loopback to a socket that drops them (no arbiter, no endpoints)."
    )
    var socketFloor = false
    @Option(
        help:
            "sockets: the arbiter as a process, loaded over loopback. dpdk: the communication thread's packet I/O through a DPDK port on a net_null device, in this process (needs --traits DPDK)."
    )
    var io = "sockets"
    @Option(help: "With --io dpdk: the EAL device (a net_null device drops what is sent and returns empty frames).")
    var dpdkDevice = "net_null0"

    func validate() throws {
        guard io == "sockets" || io == "dpdk" else { throw ValidationError("--io must be sockets or dpdk") }
        guard hosts >= 2 && hosts <= 4096 else { throw ValidationError("--hosts must be in 2...4096") }
        guard hostsPerRack >= 1 && hosts % hostsPerRack == 0 else {
            throw ValidationError("--hosts-per-rack must divide --hosts")
        }
        guard destinations >= 1 && destinations < hosts else {
            throw ValidationError("--destinations must be in 1...\(hosts - 1)")
        }
        guard acceptLate + AllocationTimeWindow.reference.maxPreload < 256 else {
            throw ValidationError(
                "--accept-late must stay below \(256 - AllocationTimeWindow.reference.maxPreload) (the endpoint schedule is a 256-slot ring)"
            )
        }
        guard outstanding >= 2 else { throw ValidationError("--outstanding must be at least 2") }
        guard flowSlotsPerSecond >= 0 && flowSlotsPerSecond.isFinite else {
            throw ValidationError("--flow-slots-per-second must be 0 or more (got \(flowSlotsPerSecond))")
        }
        guard duration > 0 && warmup >= 0 && runs >= 1 else {
            throw ValidationError("--duration and --runs must be positive, --warmup not negative")
        }
    }

    static let arbiterAddress = IPv4.parse("127.0.0.1")!
    static let endpointNetwork = IPv4.parse("127.1.0.0")!

    func configurationText() -> String {
        var hostLines = ""
        for i in 0..<hosts {
            hostLines += "    - {id: \(i + 1), address: \(IPv4.format(Self.endpointNetwork + UInt32(i) + 1)), "
            hostLines += "rack: \(i / hostsPerRack)}\n"
        }
        return """
            listen: 127.0.0.1
            metrics: 127.0.0.1:\(metricsPort)
            batch_size: \(batchSize)
            lookahead_slots: \(lookaheadSlots)
            control_budget:
              packets_per_second: \(controlBudget)
            log_level: warning
            cores:
              communication: \(arbiterCore)
            topology:
              racks: \(hosts / hostsPerRack)
              spines: \(spines)
              host_gbps: \(hostGbps)
              hosts:
            \(hostLines)
            """
    }

    func run() throws {
        guard getuid() == 0 else {
            throw ValidationError("fcp-load needs root: raw sockets (CAP_NET_RAW) for the arbiter and the endpoints")
        }
        if socketFloor {
            try measureSocketFloor()
            return
        }
        if io == "dpdk" {
            try measureDPDK()
            return
        }
        let binary =
            arbiter
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("fastpass-arbiter").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw ValidationError("no fastpass-arbiter at \(binary) (build it, or pass --arbiter)")
        }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("fcp-load-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let configPath = work.appendingPathComponent("arbiter.yaml").path
        try configurationText().write(toFile: configPath, atomically: true, encoding: .utf8)
        let daemonConfiguration = try ArbiterDaemonConfiguration.load(path: configPath)
        let topology = try Topology(daemonConfiguration.topology)

        var results: [LoadRunResult] = []
        for r in 0..<runs {
            let result = try measure(
                binary: binary, configPath: configPath, log: work.appendingPathComponent("arbiter-\(r).log").path,
                topology: topology)
            if !json {
                print(
                    "run \(r + 1): handled \(Int(result.handledPerSecond)) pkt/s "
                        + "(rx \(Int(result.arbiterReceivedPerSecond)), tx \(Int(result.arbiterSentPerSecond))), "
                        + "busy \(String(format: "%.1f", result.busyFraction * 100)) %, "
                        + "\(Int(result.handledPerBusySecond)) pkt per busy core-second, "
                        + "request→allocation p50 \(String(format: "%.1f", result.latencyMicroseconds.p50)) µs "
                        + "p99 \(String(format: "%.1f", result.latencyMicroseconds.p99)) µs")
            }
            results.append(result)
        }
        let report = LoadReport(
            machine: .current(),
            workload: .init(
                hosts: hosts, hostsPerRack: hostsPerRack, spines: spines, destinationsPerEndpoint: destinations,
                outstandingSlotsPerFlow: outstanding, flowSlotsPerSecond: flowSlotsPerSecond,
                acceptLateSlots: acceptLate, hostGbps: hostGbps,
                timeslotNanoseconds: topology.timeslotNanoseconds, batchSize: batchSize,
                lookaheadSlots: lookaheadSlots, warmupSeconds: warmup, durationSeconds: duration,
                arbiterCore: arbiterCore, generatorCore: generatorCore),
            runs: results, median: .perFieldMedian(results))
        if json {
            printJSON(report)
        } else {
            let m = report.median
            print(
                """
                fcp-load: \(hosts) endpoints × \(destinations) destinations, timeslot \(String(format: "%.1f", topology.timeslotNanoseconds)) ns, batch \(batchSize), \(runs) runs × \(duration) s (median)
                  arbiter communication thread (core \(arbiterCore)): \(Int(m.handledPerSecond)) FCP pkt/s handled (rx \(Int(m.arbiterReceivedPerSecond)) + tx \(Int(m.arbiterSentPerSecond))), busy \(String(format: "%.1f", m.busyFraction * 100)) %
                  per busy core-second: \(Int(m.handledPerBusySecond)) pkt; per packet \(Int(m.ownNanosecondsPerPacket)) ns in the arbiter, \(Int(m.ioNanosecondsPerPacket)) ns in socket calls
                  FCP timeouts \(Int(m.timeoutsPerSecond))/s, endpoint resets \(m.endpointResets)
                  generator (core \(generatorCore)): sent \(Int(m.generatorSentPerSecond)) pkt/s, received \(Int(m.generatorReceivedPerSecond)) pkt/s, busy \(String(format: "%.1f", m.generatorBusyFraction * 100)) %, sends refused \(m.generatorSendErrors); dropped at full sockets \(m.socketDrops)
                  \(m.invalidity.map { "NOT VALID as a measure of the arbiter: \($0)" } ?? "valid: generator below 70 % busy, no socket drops")
                  allocations: \(Int(m.allocationsPerSecond))/s; late at the arbiter \(m.allocationsLate), rejected \(m.allocationsRejected)
                  request→allocation (µs): p50 \(String(format: "%.1f", m.latencyMicroseconds.p50)) p90 \(String(format: "%.1f", m.latencyMicroseconds.p90)) p99 \(String(format: "%.1f", m.latencyMicroseconds.p99)) p99.9 \(String(format: "%.1f", m.latencyMicroseconds.p999)) (\(m.latencyMicroseconds.samples) samples; \(m.latencyMicroseconds.unattributed) arrivals with no request pending, \(m.latencyMicroseconds.requestsForgotten) requests dropped from a full pending list)
                  arbiter slot lateness p99 since it started (a power-of-two bucket's bound): \(m.slotLatenessP99Nanoseconds) ns
                  packets per allocation packet \(String(format: "%.2f", m.packetsPerAllocationPacket)), allocations per allocation packet \(String(format: "%.1f", m.allocationsPerAllocationPacket)); allocations arriving more than 16 slots late \(String(format: "%.1f", 100 * m.lateOnArrivalShare)) %, median lead on arrival \(m.medianArrivalLeadSlots) slots
                """)
        }
    }

    /// The cost of a raw-socket send on this machine with nothing else running: the most a
    /// communication thread on sockets could send per second if its own work were free.
    func measureSocketFloor() throws {
        var rates: [Double] = []
        for _ in 0..<runs {
            let result = Mutex<Result<Double, PacketIOError>>(.success(0))
            let done = DispatchSemaphore(value: 0)
            let seconds = duration
            PinnedThread.start(name: "fp-floor", cpu: arbiterCore) { _ in
                defer { done.signal() }
                do throws(PacketIOError) {
                    let io = try RawIPv4Socket(address: Self.arbiterAddress)
                    // Delivered as in the load test, to a bound socket whose kernel filter
                    // drops it (with no socket at all, the kernel would answer each with
                    // an ICMP error and measure that instead).
                    let target = Self.endpointNetwork + 1
                    let sink = try RawIPv4Socket(address: target, receiveBufferBytes: 1 << 16)
                    try sink.filterDestinations(network: 0, prefixLength: 32)
                    var batch = PacketBatch(capacity: 32)
                    var sent = 0
                    let start = RealtimeClock.now()
                    let end = start + UInt64(seconds * 1e9)
                    var now = start
                    while now < end {
                        while !batch.isFull && batch.append({ _ in (target, 64) }) {}
                        sent += try io.send(&batch)
                        now = RealtimeClock.now()
                    }
                    withExtendedLifetime(sink) {}
                    let rate = Double(sent) / (Double(now - start) / 1e9)
                    result.withLock { $0 = .success(rate) }
                } catch {
                    result.withLock { $0 = .failure(error) }
                }
            }
            done.wait()
            rates.append(try result.withLock { $0 }.get())
        }
        let m = median(rates)
        if json {
            printJSON(SocketFloorReport(machine: .current(), core: arbiterCore, runs: rates, median: m))
        } else {
            print(
                "socket floor: \(Int(m)) datagrams/s sent by one thread on core \(arbiterCore) "
                    + "(\(String(format: "%.0f", 1e9 / m)) ns each; median of \(runs) × \(duration) s; runs \(rates.map { Int($0) }))"
            )
        }
    }

    /// One run: start the arbiter, load it, read its counters at the start and end of the
    /// measured window, stop it.
    func measure(binary: String, configPath: String, log: String, topology: Topology) throws -> LoadRunResult {
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--config", configPath, "--allocator-threads", "\(allocatorThreads)"]
        process.standardOutput = logHandle
        process.standardError = logHandle
        try process.run()
        defer {
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
        }
        let address = "127.0.0.1:\(metricsPort)"
        var up = false
        for _ in 0..<100 {
            if (try? HTTPGet.fetch(address: address, path: "/status", timeout: 0.5)) != nil {
                up = true
                break
            }
            if !process.isRunning { break }
            usleep(50_000)
        }
        guard up else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            // The whole end of its log: a crash's backtrace is dozens of lines.
            let tail = text.split(separator: "\n").suffix(40).joined(separator: "\n")
            throw ValidationError("the arbiter did not come up:\n\(tail.isEmpty ? "no output" : tail)")
        }

        let generator = try LoadGenerator(
            topology: topology, arbiter: Self.arbiterAddress, network: Self.endpointNetwork,
            destinations: destinations, outstanding: outstanding, flowSlotsPerSecond: flowSlotsPerSecond,
            acceptLate: acceptLate)
        let measureFrom = RealtimeClock.now() + UInt64(warmup * 1e9)
        generator.start(cpu: generatorCore, measureFrom: measureFrom)
        Thread.sleep(forTimeInterval: warmup + 0.15)  // past a snapshot publication
        let before = try StatusSample(address: address)
        let dropsBefore = RawSocketDrops.read()
        let g0 = generator.counters
        Thread.sleep(forTimeInterval: duration)
        let after = try StatusSample(address: address)
        let dropsAfter = RawSocketDrops.read()
        let g1 = generator.counters
        let latency = generator.stop()
        let leads = generator.arrivalLeads

        process.terminate()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("the arbiter exited with status \(process.terminationStatus) (log: \(log))")
        }
        let seconds = after.uptime - before.uptime
        guard seconds > 0 else { throw ValidationError("the arbiter published no new snapshot while measured") }
        let generatorSeconds = Double(g1.time - g0.time) / 1e9
        let rx = Double(after.received - before.received) / seconds
        let tx = Double(after.sent - before.sent) / seconds
        let busy = Double(after.busy - before.busy) / 1e9
        let packets = Double(after.received + after.sent - before.received - before.sent)
        let ioSeconds = Double(after.io - before.io) / 1e9
        return LoadRunResult(
            arbiterReceivedPerSecond: rx, arbiterSentPerSecond: tx, handledPerSecond: rx + tx,
            busyFraction: busy / seconds,
            handledPerBusySecond: busy > 0 ? packets / busy : 0,
            ownNanosecondsPerPacket: packets > 0 ? (busy - ioSeconds) * 1e9 / packets : 0,
            ioNanosecondsPerPacket: packets > 0 ? ioSeconds * 1e9 / packets : 0,
            timeoutsPerSecond: Double(after.timeouts - before.timeouts) / seconds,
            endpointResets: after.resets - before.resets,
            generatorSentPerSecond: Double(g1.sent - g0.sent) / generatorSeconds,
            generatorReceivedPerSecond: Double(g1.received - g0.received) / generatorSeconds,
            allocationsPerSecond: Double(after.allocations - before.allocations) / seconds,
            allocationsLate: after.late - before.late, allocationsRejected: after.rejected - before.rejected,
            slotLatenessP99Nanoseconds: after.latenessP99,
            latencyMicroseconds: latency,
            packetsPerAllocationPacket: generator.allocationPayloads > 0
                ? Double(generator.packetsReceived) / Double(generator.allocationPayloads) : 0,
            allocationsPerAllocationPacket: generator.allocationPayloads > 0
                ? Double(leads.total) / Double(generator.allocationPayloads) : 0,
            lateOnArrivalShare: leads.total > 0
                ? Double(leads.count(below: -Int(AllocationTimeWindow.reference.missThreshold))) / Double(leads.total)
                : 0,
            medianArrivalLeadSlots: leads.quantile(0.5) ?? 0,
            generatorBusyFraction: Double(g1.busy - g0.busy) / Double(g1.time - g0.time),
            generatorSendErrors: g1.sendErrors - g0.sendErrors,
            socketDrops: dropsAfter &- dropsBefore)
    }
}

/// The counters one `/status` read gives.
struct StatusSample {
    var uptime: Double
    var received: UInt64
    var sent: UInt64
    var busy: UInt64
    var io: UInt64
    var timeouts: UInt64
    var resets: UInt64
    var allocations: UInt64
    var late: UInt64
    var rejected: UInt64
    var latenessP99: UInt64

    init(address: String) throws {
        let body = try HTTPGet.fetch(address: address, path: "/status", timeout: 2)
        let status: ArbiterStatus
        do { status = try StatusJSON.decode(ArbiterStatus.self, from: body) } catch {
            throw ValidationError("/status: \(error)")
        }
        uptime = status.uptimeSeconds
        received = status.io.received
        sent = status.io.sent
        busy = status.busyNanoseconds
        io = status.ioNanoseconds
        timeouts = status.fcp.timeoutPackets
        resets = status.core.endpointResets
        allocations = status.sessions.allocationsSent
        late = status.sessions.allocationsFellOff
        rejected = status.sessions.allocationsRejected
        latenessP99 = status.slotLateness.p99
    }
}

/// Request→allocation latency quantiles.
struct LatencySummary: Codable {
    var samples: Int
    /// Allocations that arrived with no request of theirs pending (answering requests from
    /// before a reset): not sampled.
    var unattributed: UInt64 = 0
    /// Requests dropped from a flow's 16-entry pending list (it was full): their
    /// allocations are timed from a later request, which understates the latency.
    var requestsForgotten: UInt64 = 0
    var p50: Double
    var p90: Double
    var p99: Double
    var p999: Double

    init(
        samples: Int, unattributed: UInt64 = 0, requestsForgotten: UInt64 = 0, p50: Double, p90: Double, p99: Double,
        p999: Double
    ) {
        (self.samples, self.p50, self.p90, self.p99, self.p999) = (samples, p50, p90, p99, p999)
        (self.unattributed, self.requestsForgotten) = (unattributed, requestsForgotten)
    }

    init(nanoseconds values: [UInt64]) {
        let sorted = values.sorted()
        func q(_ f: Double) -> Double {
            sorted.isEmpty ? 0 : Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * f))]) / 1e3
        }
        self.init(samples: sorted.count, p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999))
    }
}

struct LoadRunResult: Codable {
    var arbiterReceivedPerSecond: Double
    var arbiterSentPerSecond: Double
    var handledPerSecond: Double
    var busyFraction: Double
    var handledPerBusySecond: Double
    /// Busy time per packet handled outside the backend's calls: the arbiter's own work.
    var ownNanosecondsPerPacket: Double
    /// Busy time per packet inside the backend's calls (the kernel, for sockets).
    var ioNanosecondsPerPacket: Double
    /// Arbiter packets that timed out unacknowledged, per second: above a few, the offered
    /// load is beyond what the machine sustains and FCP retransmits.
    var timeoutsPerSecond: Double
    var endpointResets: UInt64
    var generatorSentPerSecond: Double
    var generatorReceivedPerSecond: Double
    var allocationsPerSecond: Double
    var allocationsLate: UInt64
    var allocationsRejected: UInt64
    var slotLatenessP99Nanoseconds: UInt64
    var latencyMicroseconds: LatencySummary
    /// Packets the endpoints received per packet that carried allocations (1: none
    /// without), and allocations per such packet (whole run, as the endpoints saw them).
    var packetsPerAllocationPacket: Double
    var allocationsPerAllocationPacket: Double
    /// Allocations that reached the endpoints more than the reference's 16 slots after
    /// their slot began (whole run, warm-up included), and the median lead on arrival.
    var lateOnArrivalShare: Double
    var medianArrivalLeadSlots: Int
    /// Share of the measured time the generator's thread spent in loops that moved packets:
    /// at 70 % and above it, not the arbiter, may be what limits the run.
    var generatorBusyFraction: Double
    /// Packets the generator's kernel refused to send while measured.
    var generatorSendErrors: UInt64
    /// Packets the kernel dropped at full FCP raw sockets (the arbiter's and the
    /// generator's, /proc/net/raw) while measured.
    var socketDrops: UInt64

    /// Why the run does not measure the arbiter alone, if it does not.
    var invalidity: String? {
        var reasons: [String] = []
        if generatorBusyFraction >= 0.7 {
            reasons.append("the generator was busy \(Int(generatorBusyFraction * 100)) % (≥ 70 %)")
        }
        if socketDrops > 0 { reasons.append("\(socketDrops) packets dropped at full sockets") }
        if generatorSendErrors > 0 { reasons.append("\(generatorSendErrors) sends refused") }
        return reasons.isEmpty ? nil : reasons.joined(separator: "; ")
    }

    /// Each field's median over the runs.
    static func perFieldMedian(_ runs: [LoadRunResult]) -> LoadRunResult {
        func m(_ f: (LoadRunResult) -> Double) -> Double { median(runs.map(f)) }
        func u(_ f: (LoadRunResult) -> UInt64) -> UInt64 { UInt64(m { Double(f($0)) }) }
        return LoadRunResult(
            arbiterReceivedPerSecond: m(\.arbiterReceivedPerSecond), arbiterSentPerSecond: m(\.arbiterSentPerSecond),
            handledPerSecond: m(\.handledPerSecond), busyFraction: m(\.busyFraction),
            handledPerBusySecond: m(\.handledPerBusySecond), ownNanosecondsPerPacket: m(\.ownNanosecondsPerPacket),
            ioNanosecondsPerPacket: m(\.ioNanosecondsPerPacket), timeoutsPerSecond: m(\.timeoutsPerSecond),
            endpointResets: u(\.endpointResets), generatorSentPerSecond: m(\.generatorSentPerSecond),
            generatorReceivedPerSecond: m(\.generatorReceivedPerSecond),
            allocationsPerSecond: m(\.allocationsPerSecond), allocationsLate: u(\.allocationsLate),
            allocationsRejected: u(\.allocationsRejected), slotLatenessP99Nanoseconds: u(\.slotLatenessP99Nanoseconds),
            latencyMicroseconds: LatencySummary(
                samples: Int(m { Double($0.latencyMicroseconds.samples) }),
                unattributed: u(\.latencyMicroseconds.unattributed),
                requestsForgotten: u(\.latencyMicroseconds.requestsForgotten), p50: m(\.latencyMicroseconds.p50),
                p90: m(\.latencyMicroseconds.p90), p99: m(\.latencyMicroseconds.p99),
                p999: m(\.latencyMicroseconds.p999)),
            packetsPerAllocationPacket: m(\.packetsPerAllocationPacket),
            allocationsPerAllocationPacket: m(\.allocationsPerAllocationPacket),
            lateOnArrivalShare: m(\.lateOnArrivalShare),
            medianArrivalLeadSlots: Int(m { Double($0.medianArrivalLeadSlots) }),
            generatorBusyFraction: m(\.generatorBusyFraction), generatorSendErrors: u(\.generatorSendErrors),
            socketDrops: u(\.socketDrops))
    }
}

struct SocketFloorReport: Encodable {
    var machine: MachineDescription
    var core: Int
    var runs: [Double]
    var median: Double
}

struct LoadReport: Encodable {
    struct Workload: Encodable {
        var hosts: Int
        var hostsPerRack: Int
        var spines: Int
        var destinationsPerEndpoint: Int
        var outstandingSlotsPerFlow: UInt64
        /// Offered slots per second per flow (0: a closed loop of `outstandingSlotsPerFlow`).
        var flowSlotsPerSecond: Double
        var acceptLateSlots: UInt64
        var hostGbps: Double
        var timeslotNanoseconds: Double
        var batchSize: Int
        var lookaheadSlots: String
        var warmupSeconds: Double
        var durationSeconds: Double
        var arbiterCore: Int
        var generatorCore: Int
    }
    var machine: MachineDescription
    var workload: Workload
    var runs: [LoadRunResult]
    var median: LoadRunResult
}

/// The simulated endpoints, run by one thread: each keeps `outstanding` slots requested
/// towards each of its destinations, takes its allocations at their slots as a sending
/// endpoint would, and acknowledges what the arbiter sends.
final class LoadGenerator: @unchecked Sendable {
    struct Counters {
        var time: UInt64
        var sent: UInt64
        var received: UInt64
        /// Flows whose session was reset (counted by the flows that noticed).
        var resets: UInt64
        /// Time in loops that received, sent or handled something (ns).
        var busy: UInt64
        /// Sends the kernel refused (the packets were not sent).
        var sendErrors: UInt64
    }

    let topology: Topology
    let arbiter: UInt32
    let network: UInt32
    let destinationsPerEndpoint: Int
    let outstanding: UInt64
    /// Offered slots per second per flow; 0: keep `outstanding` requested instead.
    let flowSlotsPerSecond: Double
    let acceptLate: UInt64
    let sender: RawIPv4Socket
    let receiver: RawIPv4Socket
    private let stopRequested = Atomic<Bool>(false)
    private let sentCount = Atomic<UInt64>(0)
    private let receivedCount = Atomic<UInt64>(0)
    private let resetCount = Atomic<UInt64>(0)
    private let busyTime = Atomic<UInt64>(0)
    private let sendErrorCount = Atomic<UInt64>(0)
    private let countersTime = Atomic<UInt64>(0)
    private let finished = DispatchSemaphore(value: 0)
    /// Written by the generator thread, read after it finished.
    private var latencies: [UInt64] = []
    private var unattributedArrivals: UInt64 = 0
    private var overflowedRequests: UInt64 = 0
    /// Every endpoint's allocations by lead on arrival, summed (written by the generator
    /// thread as it ends).
    private(set) var arrivalLeads = AllocationLeadHistogram()
    /// Packets received from the arbiter, and ALLOC payloads among them (whole run).
    private(set) var packetsReceived: UInt64 = 0
    private(set) var allocationPayloads: UInt64 = 0

    /// Samples kept at most; past that, reservoir sampling keeps them representative.
    static let latencyCapacity = 2_000_000
    /// Pending request times per flow (oldest dropped when full).
    static let ringLength = 16
    /// Receive batches the generator reads per loop at most, before it walks the endpoints.
    static let receiveBatchesPerLoop = 64
    /// The least time between two working loops of the generator (see its loop).
    static let loopPeriodNanoseconds: UInt64 = 20_000

    init(
        topology: Topology, arbiter: UInt32, network: UInt32, destinations: Int, outstanding: UInt64,
        flowSlotsPerSecond: Double, acceptLate: UInt64
    ) throws {
        self.flowSlotsPerSecond = flowSlotsPerSecond
        self.acceptLate = acceptLate
        self.topology = topology
        self.arbiter = arbiter
        self.network = network
        destinationsPerEndpoint = destinations
        self.outstanding = outstanding
        sender = try RawIPv4Socket.headerIncludedSender()
        receiver = try RawIPv4Socket(address: 0, receiveBufferBytes: 16 << 20)
        try receiver.filterDestinations(network: network, prefixLength: 16)
        // Judged when the kernel received them, as an endpoint of its own would: at a
        // thousand endpoints one walk of the generator's loop takes long enough that
        // allocations waiting for it would count as late, be refused and asked for again.
        try receiver.enableReceiveTimestamps()
    }

    var counters: Counters {
        Counters(
            time: countersTime.load(ordering: .acquiring), sent: sentCount.load(ordering: .relaxed),
            received: receivedCount.load(ordering: .relaxed), resets: resetCount.load(ordering: .relaxed),
            busy: busyTime.load(ordering: .relaxed), sendErrors: sendErrorCount.load(ordering: .relaxed))
    }

    func start(cpu: Int, measureFrom: UInt64) {
        PinnedThread.start(name: "fp-load", cpu: cpu) { [self] _ in
            PinnedThread.setTimerSlack(nanoseconds: 1_000)
            run(measureFrom: measureFrom)
            finished.signal()
        }
    }

    /// Stops the thread and summarises the request→allocation latencies it measured.
    func stop() -> LatencySummary {
        stopRequested.store(true, ordering: .releasing)
        finished.wait()
        var summary = LatencySummary(nanoseconds: latencies)
        summary.unattributed = unattributedArrivals
        summary.requestsForgotten = overflowedRequests
        return summary
    }

    private func run(measureFrom: UInt64) {
        let n = topology.hostCount
        let k = destinationsPerEndpoint
        let now0 = RealtimeClock.now()
        var sessions: [EndpointSession] = (0..<n).map { i in
            var c = EndpointSessionConfiguration()
            c.node = topology.nodeIDs[i]
            c.address = topology.addresses[i]
            c.allocationWindow.missThreshold = acceptLate
            return EndpointSession(configuration: c, now: now0)
        }
        // Flow f = e * k + j goes from endpoint e to the j-th of its destinations, spread
        // so that every host receives from k others.
        var flowDestination = [NodeID](repeating: NodeID(0), count: n * k)
        for e in 0..<n {
            for j in 0..<k { flowDestination[e * k + j] = topology.nodeIDs[(e + 1 + j * max(1, n / (k + 1))) % n] }
        }
        var lastRequested = [UInt64](repeating: 0, count: n * k)
        var seenArrived = [UInt64](repeating: 0, count: n * k)
        var seen = [UInt64](repeating: 0, count: n * k)
        let ring = Self.ringLength
        var ringUpTo = [UInt64](repeating: 0, count: n * k * ring)
        var ringTime = [UInt64](repeating: 0, count: n * k * ring)
        var ringHead = [Int](repeating: 0, count: n * k)
        var ringCount = [Int](repeating: 0, count: n * k)
        // Endpoints with something to do this loop, as a list: a loop walks only those, and
        // a few more for their timers (`sweep`), so its cost follows the packets it moves,
        // not the thousand endpoints it holds (walking them all kept the generator busy at
        // loads a tenth of the arbiter's).
        var touched = [Bool](repeating: true, count: n)
        var touchedList = [Int32](0..<Int32(n))
        var nextList = [Int32]()
        nextList.reserveCapacity(n)
        touchedList.reserveCapacity(n)
        var sweepCursor = 0
        let sweepPerLoop = 32
        /// Slots offered so far over all flows (see the offered load below).
        var given: UInt64 = 0
        /// Per endpoint, the time of its latest event: arrival stamps never take it back.
        var sessionTime = [UInt64](repeating: 0, count: n)
        let offeredSince = RealtimeClock.now()
        var samples = [UInt64]()
        samples.reserveCapacity(Self.latencyCapacity)
        var sampled: UInt64 = 0
        var random: UInt64 = 0x9E37_79B9_7F4A_7C15
        var rx = PacketBatch(capacity: 64)
        var tx = PacketBatch(capacity: 64)
        var sent: UInt64 = 0
        var received: UInt64 = 0
        var loops: UInt64 = 0
        var resets: UInt64 = 0
        var unattributed: UInt64 = 0
        var overflowed: UInt64 = 0

        func record(_ value: UInt64) {
            sampled &+= 1
            if samples.count < Self.latencyCapacity {
                samples.append(value)
            } else {
                random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let slot = Int((random >> 11) % sampled)
                if slot < Self.latencyCapacity { samples[slot] = value }
            }
        }

        var busy: UInt64 = 0
        var sendErrors: UInt64 = 0
        /// Sends a batch, counting what the kernel refused rather than hiding it.
        func flush() {
            do {
                sent &+= UInt64(try sender.send(&tx))
            } catch {
                sendErrors &+= UInt64(tx.count)
            }
            tx.removeAll()
        }
        var lastWork: UInt64 = 0
        while !stopRequested.load(ordering: .relaxed) {
            loops &+= 1
            var now = RealtimeClock.now()
            // At most one working loop per `loopPeriodNanoseconds`: the rest of it sleeps,
            // so a loop handles what gathered meanwhile and its fixed cost (the receive
            // call, the timer sweep, the send call) is shared. Arrivals are
            // judged by their kernel time stamps, so the wait does not make them late.
            if now < lastWork &+ Self.loopPeriodNanoseconds {
                usleep(UInt32((lastWork &+ Self.loopPeriodNanoseconds &- now + 999) / 1000))
                now = RealtimeClock.now()
            }
            let loopStart = now
            let workBefore = sent &+ received &+ sendErrors
            // Everything waiting, not one batch a loop: a loop walks every endpoint, and at a
            // thousand endpoints one batch a loop read 6 % of what the arbiter sent (the
            // rest overflowed the socket), so the arbiter timed out and resent forever.
            for _ in 0..<Self.receiveBatchesPerLoop {
                let got = (try? receiver.receive(into: &rx, waitingUpTo: 0)) ?? 0
                now = RealtimeClock.now()
                for i in 0..<got where rx.address(i) == arbiter {
                    let e = Int(IPv4.destination(ofHeader: rx.header(i)) &- network &- 1)
                    guard e >= 0 && e < n else { continue }
                    if !touched[e] { touchedList.append(Int32(e)) }
                    let t = max(min(rx.arrivalTime(i) ?? now, now), sessionTime[e])
                    sessionTime[e] = t
                    sessions[e].receive(rx.payload(i), now: t)
                    // Taken as they arrive, as an endpoint sending in them would by their
                    // slot: left for the loop to come round, they expired and were asked
                    // for again (at a thousand endpoints, 9 in 10).
                    while sessions[e].takeEarliestAllocation(now: t) != nil {}
                    received &+= 1
                    touched[e] = true
                }
                if got < rx.capacity { break }
            }
            if flowSlotsPerSecond > 0 {
                // Offered load: what each flow has been due since the start, asked for
                // whether or not the arbiter keeps up (then its demand and latency grow).
                // Each flow's slots fall due at its own phase of the period: in step, a
                // thousand endpoints asked at the same instant, and the requests at the back
                // of that burst waited for the 2.7 ms the arbiter took to read it. Flow f is
                // due ⌊E + f/N⌋ slots at E periods; by Hermite's identity all N flows
                // together ⌊N·E⌋, the g-th of them going to flow (N − g mod N) mod N, so a
                // loop hands out only the slots that fell due since the last.
                let flowCount = UInt64(n * k)
                let total = UInt64(Double(now &- offeredSince) * flowSlotsPerSecond * Double(flowCount) / 1e9)
                while given < total {
                    given &+= 1
                    let f = Int((flowCount &- given % flowCount) % flowCount)
                    sessions[f / k].addDemand(to: flowDestination[f], slots: 1)
                    let e = f / k
                    if !touched[e] {
                        touched[e] = true
                        touchedList.append(Int32(e))
                    }
                }
            }
            // A few endpoints a loop for their timers (timeouts, loss checks, probes) and
            // for a paced packet that may leave now.
            for _ in 0..<min(sweepPerLoop, n) {
                let e = sweepCursor
                sweepCursor = sweepCursor + 1 == n ? 0 : sweepCursor + 1
                guard !touched[e] else { continue }
                let timer = sessions[e].timerDeadline.map { $0 <= now } ?? false
                let paced = sessions[e].wantsToSend && sessions[e].earliestSendTime(now: now) <= now
                guard timer || paced || sessions[e].nextAllocationStart != nil else { continue }
                touched[e] = true
                touchedList.append(Int32(e))
            }
            for index in touchedList.indices {
                let e = Int(touchedList[index])
                touched[e] = false
                if let d = sessions[e].timerDeadline, d <= now { sessions[e].handleTimeout(now: now) }
                if let s = sessions[e].nextAllocationStart, s <= now {
                    while sessions[e].takeAllocation(dueBy: now) != nil {}
                }
                for j in 0..<k {
                    let f = e * k + j
                    guard let flow = sessions[e].flow(to: flowDestination[f]) else {
                        // New, or dropped by a reset with nothing left to ask for.
                        if flowSlotsPerSecond == 0 { sessions[e].addDemand(to: flowDestination[f], slots: outstanding) }
                        seen[f] = 0
                        seenArrived[f] = 0
                        lastRequested[f] = 0
                        ringCount[f] = 0
                        continue
                    }
                    if flow.received < seen[f] || flow.requested < lastRequested[f] || flow.arrived < seenArrived[f] {
                        // A reset rebased the session's counters to zero (keeping what is
                        // still needed): the requests in flight are forgotten.
                        resets &+= 1
                        seen[f] = flow.received
                        seenArrived[f] = flow.arrived
                        lastRequested[f] = flow.requested
                        ringCount[f] = 0
                    }
                    // Allocations that came since the last look. The arbiter serves
                    // cumulative demand, so allocation number n answers the request that
                    // first raised the requested count to n.
                    // `received` also counts allocations declared lost: they move the
                    // requests along but are not timed (only the ones that arrived are).
                    var arrivals = flow.arrived &- seenArrived[f]
                    seenArrived[f] = flow.arrived
                    while seen[f] < flow.received {
                        seen[f] &+= 1
                        while ringCount[f] > 0 && ringUpTo[f * ring + ringHead[f]] < seen[f] {
                            ringHead[f] = (ringHead[f] + 1) % ring
                            ringCount[f] -= 1
                        }
                        let timed = flow.received &- seen[f] < arrivals
                        if timed { arrivals &-= 1 }
                        guard timed && now >= measureFrom else { continue }
                        if ringCount[f] > 0 {
                            record(now &- ringTime[f * ring + ringHead[f]])
                        } else {
                            unattributed &+= 1
                        }
                    }
                    if flowSlotsPerSecond == 0 && flow.need < outstanding / 2 {
                        sessions[e].addDemand(to: flowDestination[f], slots: outstanding - flow.need)
                    }
                }
                while sessions[e].wantsToSend && sessions[e].earliestSendTime(now: now) <= now {
                    if tx.isFull { flush() }
                    let source = topology.addresses[e]
                    let added = tx.append { buffer in
                        let payload = UnsafeMutableRawBufferPointer(rebasing: buffer[IPv4.headerLength...])
                        guard case .success(let length) = sessions[e].send(now: now, into: payload), length > 0 else {
                            return nil
                        }
                        IPv4.writeHeader(into: buffer, source: source, destination: arbiter, payloadLength: length)
                        return (arbiter, IPv4.headerLength + length)
                    }
                    if !added { break }
                }
                // What the packets just built asked for, and when.
                for j in 0..<k {
                    let f = e * k + j
                    guard let flow = sessions[e].flow(to: flowDestination[f]), flow.requested > lastRequested[f]
                    else { continue }
                    lastRequested[f] = flow.requested
                    if ringCount[f] == ring {
                        // Its allocations will be timed from a later request: counted.
                        ringHead[f] = (ringHead[f] + 1) % ring
                        ringCount[f] -= 1
                        if now >= measureFrom { overflowed &+= 1 }
                    }
                    let at = f * ring + (ringHead[f] + ringCount[f]) % ring
                    ringUpTo[at] = flow.requested
                    ringTime[at] = now
                    ringCount[f] += 1
                }
                // Held back by its budget: again next loop.
                if sessions[e].wantsToSend && !touched[e] {
                    touched[e] = true
                    nextList.append(Int32(e))
                }
            }
            swap(&touchedList, &nextList)
            nextList.removeAll(keepingCapacity: true)
            if !tx.isEmpty { flush() }
            // A loop that moved no packet only polled: not counted busy (timers and
            // allocations due come with packets at these loads).
            if sent &+ received &+ sendErrors != workBefore {
                busy &+= RealtimeClock.now() &- loopStart
                lastWork = loopStart
            }
            if loops & 63 == 0 {
                now = RealtimeClock.now()
                busyTime.store(busy, ordering: .relaxed)
                sendErrorCount.store(sendErrors, ordering: .relaxed)
                sentCount.store(sent, ordering: .relaxed)
                receivedCount.store(received, ordering: .relaxed)
                resetCount.store(resets, ordering: .relaxed)
                countersTime.store(now, ordering: .releasing)
            }
        }
        latencies = samples
        for e in 0..<n {
            arrivalLeads.add(sessions[e].arrivalLeads)
            allocationPayloads &+= sessions[e].statistics.allocationPayloads
        }
        packetsReceived = received
        unattributedArrivals = unattributed
        overflowedRequests = overflowed
    }
}
