import ArgumentParser
import CPlatform
import FastpassArbiter
import Foundation

struct AllocatorBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allocator",
        abstract: "Timeslot allocator throughput on the reference arbiter's workload (release mode).",
        discussion: """
            Each node gets Poisson request arrivals with mean gap 10/load slots, each for an
            exponentially distributed number of slots (mean 10) towards a uniform other node.
            Requests that arrive during a batch's window are added before the next batch is
            allocated; adding them is timed with the allocation. The clock is virtual: batches
            run back to back as fast as the allocator goes.
            """)

    @Flag(help: "Print one JSON object instead of a summary.")
    var json = false
    @Option(help: "Hosts.")
    var nodes = 256
    @Option(help: "Offered load per host (0 < load ≤ 1).")
    var load = 0.9
    @Option(help: "Allocator stages on their own pinned threads (1 runs inline).")
    var cores = 1
    @Option(name: .customLong("batch-size"), help: "Timeslots per batch (1...64).")
    var batchSize = 16
    @Option(help: "Allocation policy: maxMinFair, shortestRemainingFirst, weightedFair, strictPriority.")
    var policy = "maxMinFair"
    @Option(name: .customLong("hosts-per-rack"), help: "Hosts per rack (racks are full-bisection).")
    var hostsPerRack = 32
    @Option(name: .customLong("warmup-slots"), help: "Slots allocated before timing starts.")
    var warmupSlots = 10_112
    @Option(help: "Timed slots per run (at least 50 000).")
    var slots = 50_048
    @Option(help: "Timed runs; the median is reported.")
    var runs = 5
    @Option(help: "Workload seed.")
    var seed: UInt64 = 1
    @Option(name: .customLong("pair-capacity"), help: "Pairs with demand at once (default: the allocator's).")
    var pairCapacity: Int?
    @Option(name: .customLong("pair-table"), help: "Pair table layout: automatic, direct, hashed.")
    var pairTable = "automatic"
    @Flag(help: "Also time adding demand and allocating separately (one extra run, per-batch timers).")
    var breakdown = false

    struct Result: Encodable {
        var benchmark = "allocator"
        var nodes: Int
        var load: Double
        var cores: Int
        var batch_size: Int
        var policy: String
        var pair_table: String
        var pair_table_bytes: Int
        var hosts_per_rack: Int
        var warmup_slots: Int
        var measured_slots: Int
        var runs: Int
        var seed: UInt64
        var ns_per_allocation: Double
        var ns_per_timeslot: Double
        var utilization: Double
        var allocations_per_run: Double
        var gbps_per_core: Double
        var offered_load_measured: Double
        var allocations_in_timed_loop: UInt64
        var allocation_counter_self_check: UInt64
        var ns_per_allocation_runs: [Double]
        var add_ns_per_allocation: Double?
        var allocate_ns_per_allocation: Double?
        var record_visits_per_allocation: Double
        var refused_requests: UInt64
        var single_core_ns_per_allocation: Double?
        var speedup: Double?
        var late_batches: UInt64?
        var machine: MachineDescription
    }

    func validate() throws {
        guard nodes >= 2 && nodes <= 65_536 else { throw ValidationError("--nodes must be in 2...65536") }
        guard load > 0 && load <= 1 else { throw ValidationError("--load must be in (0, 1]") }
        guard batchSize >= 1 && batchSize <= 64 else { throw ValidationError("--batch-size must be in 1...64") }
        guard AllocationPolicy(rawValue: policy) != nil else {
            throw ValidationError(
                "--policy must be one of \(AllocationPolicy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard PairTableLayout(rawValue: pairTable) != nil else {
            throw ValidationError(
                "--pair-table must be one of \(PairTableLayout.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard cores >= 1 && cores <= 64 else { throw ValidationError("--cores must be in 1...64") }
        guard slots >= batchSize && warmupSlots >= 0 && runs >= 1 else {
            throw ValidationError("--slots, --warmup-slots and --runs must be positive")
        }
        guard nodes % hostsPerRack == 0 || nodes < hostsPerRack else {
            throw ValidationError("--nodes must be a multiple of --hosts-per-rack (or smaller than it)")
        }
    }

    struct RunResult {
        var nanoseconds: Double
        var allocations: UInt64
        var mallocs: UInt64
        var late: UInt64
        var visits: UInt64 = 0
        var refusals: UInt64 = 0
    }

    func topology() throws -> Topology {
        let perRack = min(hostsPerRack, nodes)
        let racks = nodes / perRack
        let spines = max(1, perRack / 8)
        return try Topology(.regular(racks: racks, hostsPerRack: perRack, spines: spines))
    }

    func run() throws {
        let topology = try topology()
        var configuration = TimeslotAllocatorConfiguration()
        configuration.batchSize = batchSize
        configuration.policy = AllocationPolicy(rawValue: policy)!
        configuration.pairCapacity = pairCapacity
        configuration.pairTable = PairTableLayout(rawValue: pairTable)!
        let warmupBatches = (warmupSlots + batchSize - 1) / batchSize
        let measuredBatches = (slots + batchSize - 1) / batchSize
        let workload = ReferenceWorkload(
            nodes: nodes, load: load, batchSize: batchSize, batches: warmupBatches + measuredBatches, seed: seed)
        let selfCheck = allocationCounterSelfCheck()

        var inline: [RunResult] = []
        var threaded: [RunResult] = []
        for _ in 0..<runs {
            inline.append(
                try Self.runInline(
                    topology: topology, configuration: configuration, workload: workload, warmup: warmupBatches,
                    measured: measuredBatches))
            if cores > 1 {
                threaded.append(
                    try Self.runThreaded(
                        topology: topology, configuration: configuration, workload: workload, warmup: warmupBatches,
                        measured: measuredBatches, stages: cores))
            }
        }
        let chosen = cores > 1 ? threaded : inline
        let perAllocation = chosen.map { $0.nanoseconds / Double(max(1, $0.allocations)) }
        let medianPerAllocation = median(perAllocation)
        let medianRun = chosen.sorted { $0.nanoseconds < $1.nanoseconds }[chosen.count / 2]
        let measuredSlots = measuredBatches * batchSize
        let allocations = median(chosen.map { Double($0.allocations) })
        let nsPerSlot = median(chosen.map { $0.nanoseconds / Double(measuredSlots) })
        let offered = Double(
            workload.sizes[workload.batchStart[warmupBatches]..<workload.batchStart[warmupBatches + measuredBatches]]
                .reduce(0) { $0 + UInt64($1) })
        let singleCore = median(inline.map { $0.nanoseconds / Double(max(1, $0.allocations)) })
        let split =
            breakdown
            ? try Self.runSplit(
                topology: topology, configuration: configuration, workload: workload, warmup: warmupBatches,
                measured: measuredBatches) : nil
        let table = try TimeslotAllocator(topology: topology, configuration: configuration, routing: false).table
        let result = Result(
            nodes: nodes, load: load, cores: cores, batch_size: batchSize, policy: policy,
            pair_table: table.isDirect ? "direct" : "hashed", pair_table_bytes: table.memoryBytes,
            hosts_per_rack: min(hostsPerRack, nodes), warmup_slots: warmupBatches * batchSize,
            measured_slots: measuredSlots, runs: runs, seed: seed, ns_per_allocation: medianPerAllocation,
            ns_per_timeslot: nsPerSlot, utilization: allocations / Double(nodes * measuredSlots),
            allocations_per_run: allocations,
            gbps_per_core: 1e9 / medianPerAllocation * 12_000 / 1e9 / Double(cores),
            offered_load_measured: offered / Double(nodes * measuredSlots),
            allocations_in_timed_loop: chosen.map(\.mallocs).max() ?? 0, allocation_counter_self_check: selfCheck,
            ns_per_allocation_runs: perAllocation, add_ns_per_allocation: split?.add,
            allocate_ns_per_allocation: split?.allocate,
            record_visits_per_allocation: Double(inline[0].visits) / Double(max(1, inline[0].allocations)),
            refused_requests: chosen.map(\.refusals).max() ?? 0,
            single_core_ns_per_allocation: cores > 1 ? singleCore : nil,
            speedup: cores > 1 ? singleCore / medianPerAllocation : nil,
            late_batches: cores > 1 ? medianRun.late : nil,
            machine: .current())
        if json {
            printJSON(result)
        } else {
            print(
                String(
                    format: "allocator: %d nodes, load %.2f, %d core(s): %.2f ns/allocation, %.0f ns/timeslot, "
                        + "utilization %.4f, %.1f Gbit/s per core, %llu allocations in timed loop",
                    nodes, load, cores, medianPerAllocation, nsPerSlot, result.utilization, result.gbps_per_core,
                    result.allocations_in_timed_loop))
            if let speedup = result.speedup { print(String(format: "speed-up over one core: %.2f×", speedup)) }
        }
    }

    static func runInline(
        topology: Topology, configuration: TimeslotAllocatorConfiguration, workload: ReferenceWorkload, warmup: Int,
        measured: Int
    ) throws -> RunResult {
        let allocator = try TimeslotAllocator(topology: topology, configuration: configuration, routing: false)
        let requests = RequestWindows(workload)
        var allocations: UInt64 = 0
        func step(_ b: Int) -> Int {
            if b > 0 {
                _ = requests.add(batch: b - 1, to: allocator)
            }
            return allocator.allocateNextBatch().totalCount
        }
        for b in 0..<warmup { _ = step(b) }
        let m = Measurement.of {
            for b in warmup..<(warmup + measured) { allocations &+= UInt64(step(b)) }
        }
        return RunResult(
            nanoseconds: m.nanoseconds, allocations: allocations, mallocs: m.allocations, late: 0,
            visits: allocator.stageStatistics.recordVisits, refusals: allocator.statistics.refusals)
    }

    /// Times adding demand and allocating separately, batch by batch (the timer reads
    /// add about 40 ns per batch to each side).
    static func runSplit(
        topology: Topology, configuration: TimeslotAllocatorConfiguration, workload: ReferenceWorkload, warmup: Int,
        measured: Int
    ) throws -> (add: Double, allocate: Double) {
        let allocator = try TimeslotAllocator(topology: topology, configuration: configuration, routing: false)
        let requests = RequestWindows(workload)
        var adding: UInt64 = 0
        var allocating: UInt64 = 0
        var allocations = 0
        for b in 0..<(warmup + measured) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            if b > 0 { _ = requests.add(batch: b - 1, to: allocator) }
            let t1 = DispatchTime.now().uptimeNanoseconds
            let n = allocator.allocateNextBatch().totalCount
            let t2 = DispatchTime.now().uptimeNanoseconds
            if b >= warmup {
                adding += t1 - t0
                allocating += t2 - t1
                allocations += n
            }
        }
        return (Double(adding) / Double(allocations), Double(allocating) / Double(allocations))
    }

    static func runThreaded(
        topology: Topology, configuration: TimeslotAllocatorConfiguration, workload: ReferenceWorkload, warmup: Int,
        measured: Int, stages: Int
    ) throws -> RunResult {
        var pipelineConfiguration = PipelineConfiguration()
        pipelineConfiguration.stages = stages
        pipelineConfiguration.routing = false
        let available = Int(fp_available_cpus())
        pipelineConfiguration.cpus = (0..<stages).map { $0 % max(1, available) }
        let pipeline = try AllocatorPipeline(
            topology: topology, allocator: configuration, pipeline: pipelineConfiguration)
        let requests = RequestWindows(workload)
        let feed: @Sendable (Int, PipelineDemand) -> Void = { b, demand in
            guard b > 0 else { return }
            _ = requests.add(batch: b - 1, to: demand)
        }
        _ = pipeline.run(batches: warmup, feed: feed)
        let run = pipeline.start(batches: measured, feed: feed)
        let m = Measurement.of {
            run.go()
            run.join()
        }
        run.collect()
        let statistics = run.statistics
        return RunResult(
            nanoseconds: m.nanoseconds, allocations: statistics.allocations, mallocs: m.allocations,
            late: statistics.lateBatches, visits: statistics.stages.reduce(0) { $0 + $1.recordVisits },
            refusals: statistics.refusedRequests)
    }
}
