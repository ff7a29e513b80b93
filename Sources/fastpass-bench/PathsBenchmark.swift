import ArgumentParser
import FastpassArbiter
import Foundation

struct PathsBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paths",
        abstract: "Path selection cost per timeslot on allocations made by the timeslot allocator (release mode).",
        discussion: """
            The allocator first allocates the reference workload (Poisson arrivals, mean 10 slots
            per request, uniform destinations) on the fabric, respecting the racks' uplink
            capacity; its batches are recorded. Each is then copied into a batch buffer, as the
            allocator stage would hand it over, and path selection on it is timed: grouping the
            batch's allocations by slot, choosing spines, writing them back (a clock read before
            and after each batch, about 40 ns, is included).
            """)

    @Flag(help: "Print one JSON object instead of a summary.")
    var json = false
    @Option(help: "Racks.")
    var racks = 32
    @Option(name: .customLong("hosts-per-rack"), help: "Hosts per rack.")
    var hostsPerRack = 32
    @Option(help: "Spines (any number).")
    var spines = 8
    @Option(help: "Host bandwidth over uplink bandwidth per rack (1 = full bisection, 3 = 3:1).")
    var oversubscription = 1.0
    @Option(help: "Offered load per host.")
    var load = 0.9
    @Option(help: "Timed slots per run.")
    var slots = 20_000
    @Option(name: .customLong("warmup-slots"), help: "Slots allocated before recording starts.")
    var warmupSlots = 10_112
    @Option(help: "Timed runs; the median is reported.")
    var runs = 5
    @Option(help: "Workload seed.")
    var seed: UInt64 = 1
    @Option(help: "Path selection method: edgeColoring or eulerSplit (power-of-two spines).")
    var method = "edgeColoring"
    @Option(
        name: .customLong("pinned-share"),
        help:
            "Share of hosts pinned to their pinned spine, as reference endpoints are (0...1; every host whose index modulo 1/share is 0)."
    )
    var pinnedShare = 0.0

    struct Result: Encodable {
        var benchmark = "paths"
        var racks: Int
        var hosts_per_rack: Int
        var spines: Int
        var oversubscription: Double
        var link_packets_per_slot: String
        var method: String
        var pinned_hosts: Int
        var load: Double
        var slots: Int
        var runs: Int
        var seed: UInt64
        var ns_per_timeslot: Double
        var ns_per_inter_rack_allocation: Double
        var ns_per_timeslot_runs: [Double]
        var inter_rack_allocations_per_slot: Double
        var inter_rack_link_utilization: Double
        var unroutable: UInt64
        var alternating_paths_per_slot: Double
        var recoloured_edges_per_path: Double
        var allocations_in_timed_loop: UInt64
        var allocation_counter_self_check: UInt64
        var machine: MachineDescription
    }

    func validate() throws {
        guard racks >= 2 && racks <= 4096 else { throw ValidationError("--racks must be in 2...4096") }
        guard hostsPerRack >= 1 && racks * hostsPerRack <= 65_536 else {
            throw ValidationError("--hosts-per-rack: at most 65536 hosts in all")
        }
        guard spines >= 1 && spines <= 1024 else { throw ValidationError("--spines must be in 1...1024") }
        guard oversubscription >= 1 else { throw ValidationError("--oversubscription must be at least 1") }
        guard load > 0 && load <= 1 else { throw ValidationError("--load must be in (0, 1]") }
        guard pinnedShare >= 0 && pinnedShare <= 1 else { throw ValidationError("--pinned-share must be in 0...1") }
        guard slots >= 16 && runs >= 1 else { throw ValidationError("--slots ≥ 16 and --runs ≥ 1") }
        guard PathSelector.Method(rawValue: method) != nil else {
            throw ValidationError(
                "--method must be one of \(PathSelector.Method.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        let topology = try Topology(
            .regular(racks: racks, hostsPerRack: hostsPerRack, spines: spines, oversubscription: oversubscription))
        let configuration = TimeslotAllocatorConfiguration()
        let batchSize = configuration.batchSize
        let warmupBatches = warmupSlots / batchSize
        let measuredBatches = (slots + batchSize - 1) / batchSize
        let workload = ReferenceWorkload(
            nodes: topology.hostCount, load: load, batchSize: batchSize, batches: warmupBatches + measuredBatches,
            seed: seed)
        // Record the allocator's batches.
        let allocator = try TimeslotAllocator(topology: topology, configuration: configuration, routing: false)
        var recorded: [(firstSlot: UInt64, entries: [UInt64])] = []
        var interRack = 0
        for b in 0..<(warmupBatches + measuredBatches) {
            if b > 0 {
                for i in workload.batchStart[b - 1]..<workload.batchStart[b] {
                    allocator.addDemand(
                        source: Int(workload.sources[i]), destination: Int(workload.destinations[i]),
                        slots: workload.sizes[i])
                }
            }
            let batch = allocator.allocateNextBatch()
            guard b >= warmupBatches else { continue }
            let entries = Array(batch.allocationEntries)
            for e in entries where topology.rackOf[Int(e & 0xFFFF)] != topology.rackOf[Int((e >> 16) & 0xFFFF)] {
                interRack += 1
            }
            recorded.append((batch.firstSlot, entries))
        }
        let selfCheck = allocationCounterSelfCheck()
        var times: [Double] = []
        var mallocs: UInt64 = 0
        var unroutable: UInt64 = 0
        var paths: UInt64 = 0
        var recoloured: UInt64 = 0
        for _ in 0..<runs {
            let stage = PathStage(
                topology: topology, batchSize: batchSize, method: PathSelector.Method(rawValue: method) ?? .edgeColoring
            )
            for h in pinnedHosts(topology.hostCount) { stage.setSourcePinned(h, true) }
            // One batch buffer, refilled with each recorded batch as the allocator stage would
            // hand it over (in cache); only path selection is timed, batch by batch.
            let batch = BatchAllocations(batchSize: batchSize, hostCount: topology.hostCount, withdrawalCapacity: 1)
            var timed: UInt64 = 0
            let m = Measurement.of {
                for r in recorded {
                    r.entries.withUnsafeBufferPointer { batch.replace(firstSlot: r.firstSlot, with: $0) }
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    stage.route(batch)
                    timed &+= DispatchTime.now().uptimeNanoseconds - t0
                }
            }
            times.append(Double(timed) / Double(measuredBatches * batchSize))
            mallocs = max(mallocs, m.allocations)
            unroutable = stage.unroutable
            paths = stage.selector.recolorings
            recoloured = stage.selector.recoloredEdges
        }
        let measuredSlots = measuredBatches * batchSize
        let perSlot = median(times)
        let interRackPerSlot = Double(interRack) / Double(measuredSlots)
        let linkCapacity = Double(topology.rackCount * spines) * topology.linkRate.packetsPerSlot
        let chosen = PathSelector.Method(rawValue: method) ?? .edgeColoring
        let method =
            chosen == .eulerSplit && spines.nonzeroBitCount == 1
            ? "Euler split" : "edge colouring (colour bitmaps, alternating paths)"
        let result = Result(
            racks: racks, hosts_per_rack: hostsPerRack, spines: spines, oversubscription: oversubscription,
            link_packets_per_slot: topology.linkRate.description, method: method,
            pinned_hosts: pinnedHosts(topology.hostCount).count, load: load, slots: measuredSlots,
            runs: runs, seed: seed, ns_per_timeslot: perSlot,
            ns_per_inter_rack_allocation: perSlot / max(interRackPerSlot, 1), ns_per_timeslot_runs: times,
            inter_rack_allocations_per_slot: interRackPerSlot,
            inter_rack_link_utilization: interRackPerSlot / linkCapacity, unroutable: unroutable,
            alternating_paths_per_slot: Double(paths) / Double(measuredSlots),
            recoloured_edges_per_path: Double(recoloured) / Double(max(paths, 1)),
            allocations_in_timed_loop: mallocs, allocation_counter_self_check: selfCheck, machine: .current())
        if json {
            printJSON(result)
        } else {
            print(
                String(
                    format: "paths: %d racks × %d hosts, %d spines, %.2f:1, load %.2f: %.0f ns/timeslot "
                        + "(%.1f inter-rack allocations per slot, %llu unroutable), %llu allocations in timed loop",
                    racks, hostsPerRack, spines, oversubscription, load, perSlot, interRackPerSlot, unroutable,
                    mallocs))
        }
    }

    /// The hosts `--pinned-share` pins: evenly spread over the racks.
    func pinnedHosts(_ count: Int) -> [Int] {
        guard pinnedShare > 0 else { return [] }
        let every = max(1, Int((1 / pinnedShare).rounded()))
        return (0..<count).filter { $0 % every == 0 }
    }
}
