import FastpassProtocol
import TestSupport
import Testing

@testable import FastpassArbiter

/// The arbiter core with its allocator pipeline stepped by the test instead of run on
/// threads: feeds, allocation rounds and routing interleave as the threads may, in an
/// order a seed chooses, the same on every run and on any machine.
@Suite("Arbiter core with a stepped allocator pipeline")
struct SteppedPipelineTests {
    typealias Network = ArbiterCoreTests.Network
    typealias Step = AllocatorPipeline.Stepper.Step

    static func network(stages: Int) throws -> Network {
        let topology = try Topology(.regular(racks: 2, hostsPerRack: 4, spines: 2))
        var configuration = ArbiterCoreConfiguration()
        var pipeline = PipelineConfiguration()
        pipeline.stages = stages
        configuration.lookaheadSlots = 32
        configuration.pipeline = pipeline
        let network = try Network(topology: topology, referenceHosts: [], configuration: configuration)
        network.core.startAllocatorSteps(now: network.now)
        return network
    }

    /// Runs the network for `duration` ns in steps of a microsecond; after each, takes
    /// steps of the pipeline, each picked at random among those its threads could take,
    /// until every batch due (within the lookahead) is routed, going at most one batch
    /// further: that one is often left fed, or half allocated, while the endpoints and the
    /// core go on, and its successor is fed before it is finished.
    static func run(_ network: inout Network, for duration: UInt64, _ random: inout TestRandom) {
        let p = network.core.allocator.threaded!
        let stepper = p.stepper!
        let batchSize = UInt64(p.batchSize)
        let end = network.now + duration
        while network.now < end {
            network.run(for: 1_000)
            let horizon = network.core.currentSlot(now: network.now) + UInt64(network.core.lookaheadSlots)
            let due = horizon < p.baseSlot ? -1 : Int((horizon - p.baseSlot) / batchSize)
            while stepper.nextRoute <= due {
                let steps = Step.allCases.filter { stepper.canTake($0) && stepper.batch(of: $0) <= due + 1 }
                // Feeds first, more often than not, as when the stages fall behind the clock.
                if steps.contains(.feed) && random.chance(0.8) {
                    p.step(.feed)
                } else {
                    p.step(steps[random.below(steps.count)])
                }
            }
        }
    }

    /// Brings the pipeline to rest: a feed takes in every command the core sent, every
    /// batch fed is finished and routed, and the core takes the results in (no packet
    /// arrives meanwhile). Then the allocator's demand sits in its pair table and rings,
    /// where it can be counted. False when the results made the core send commands again.
    static func settle(_ network: inout Network) -> Bool {
        let p = network.core.allocator.threaded!
        let stepper = p.stepper!
        func finishFed() {
            while stepper.nextRoute < stepper.nextFeed {
                p.step(Step.allCases.first { $0 != .feed && stepper.canTake($0) }!)
            }
        }
        finishFed()
        p.step(.feed)
        finishFed()
        network.core.advance(now: network.now)
        return p.commands.count == 0
    }

    /// At rest: what `source`'s arbiter session holds, handed to the allocator and neither
    /// allocated nor withdrawn, and what the allocator holds of its demand.
    static func books(_ network: Network, source: Int) -> (session: UInt64, allocator: UInt64) {
        let topology = network.topology
        var held: UInt64 = 0
        for d in network.core.session(forAddress: topology.addresses[source])?.destinations ?? [] {
            held += d.released - d.allocated - d.withdrawn
        }
        return (held, network.core.allocator.threaded!.pipeline.outstandingSlots { s, _ in s == source })
    }

    /// An endpoint reset again and again while its demand is being allocated: each reset
    /// is applied by a feed while the batches before it may still be in their rounds. A
    /// batch numbered before the purge used to take the new session's demand (a record
    /// of the pair absorbing it in its first round, or when it ran out of the old demand
    /// in a later round); the core drops everything of such a batch as stale, so those
    /// slots were lost for good and the endpoint stayed short of them.
    @Test(
        "an endpoint reset many times while its allocations are in the pipeline gets exactly its demand, and the books agree",
        arguments: [(2, 1), (2, 2), (2, 3), (2, 4), (3, 5), (3, 6)])
    func resetsWhileInFlight(stages: Int, seed: UInt64) throws {
        var random = TestRandom(seed: seed)
        var network = try Self.network(stages: stages)
        let topology = network.topology
        // Host 0 shares destinations 1 and 5 with others: its records stay blocked and
        // circulate from batch to batch rather than retiring.
        var asked: [Int: UInt64] = [:]
        for (s, d, n) in [(0, 1, 600), (0, 5, 900), (2, 1, 500), (3, 5, 500), (4, 0, 300), (6, 7, 300)] {
            let added = network.ask(from: s, to: d, slots: UInt64(n))
            #expect(added)
            asked[s * 64 + d] = UInt64(n)
        }
        var resets = 0
        var limit = 0
        while resets < 100 && limit < 400 {
            Self.run(&network, for: UInt64(3_000 + random.below(20_000)), &random)
            limit += 1
            let need = [1, 5].reduce(UInt64(0)) {
                $0 + (network.hosts[0].session.flow(to: network.name(of: $1, by: 0))?.need ?? 0)
            }
            guard need > 0 else { break }
            if resets % 4 == 0 && Self.settle(&network) {
                for h in 0..<topology.hostCount {
                    let books = Self.books(network, source: h)
                    #expect(
                        books.session == books.allocator,
                        "after \(resets) resets host \(h)'s session holds \(books.session), the allocator \(books.allocator)"
                    )
                }
            }
            network.hosts[0].session.forceReset(now: network.now)
            resets += 1
        }
        #expect(resets >= 10, "host 0 was served before it was reset enough: \(resets) resets")
        let total = asked.values.reduce(0, +)
        var waited = 0
        while network.usedPerPair.values.reduce(0, +) < total && waited < 100 {
            Self.run(&network, for: 1_000_000, &random)
            waited += 1
        }
        Self.run(&network, for: 200_000, &random)  // anything beyond the demand would show now
        let s = network.core.statistics
        #expect(network.usedPerPair == asked, "used \(network.usedPerPair) of \(asked); core \(s)")
        #expect(s.endpointResets >= UInt64(resets))
        #expect(s.allocationsPurged > 0, "no allocation was in flight at a reset")
        ArbiterCoreTests.checkSchedule(network)
        let settled = Self.settle(&network)
        #expect(settled)
        for h in 0..<topology.hostCount {
            let books = Self.books(network, source: h)
            #expect(books.session == 0 && books.allocator == 0, "host \(h): \(books)")
        }
    }

    /// A purge applied by the feed of batch `b + 1` while batch `b` is still being
    /// allocated: demand added after it is the purged host's new demand, which the core
    /// counts only from batch `b + 1` on (it drops what batch `b` says about the host as
    /// stale). Batch `b` must not allocate any of it: neither through the pair's record
    /// looking at its pair in a first round that comes after that feed, nor through the
    /// record running out of the old demand in a later round and taking what was added.
    @Test(
        "demand added after a purge is never allocated by a batch numbered before the purge",
        arguments: [false, true])
    func purgeDuringEarlierBatch(inLaterRound: Bool) throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 4, spines: 1))
        var configuration = PipelineConfiguration()
        configuration.stages = 2
        let pipeline = try AllocatorPipeline(topology: topology, pipeline: configuration)
        let stepper = AllocatorPipeline.Stepper(pipeline: pipeline)
        // Per batch: allocations from 0 to 1.
        var allocated: [Int: Int] = [:]
        let consume: (BatchAllocations) -> Void = { batch in
            let b = Int(batch.firstSlot) / batch.batchSize
            for i in 0..<batch.totalCount {
                let a = batch.allocation(i)
                if a.source == 0 && a.destination == 1 { allocated[b, default: 0] += 1 }
            }
        }
        let b = 3
        let new: UInt32 = 50
        let feed: (Int, PipelineDemand) -> Void = { n, demand in
            if inLaterRound {
                // Alone, the pair is served every slot: its record comes to batch `b`
                // with 3 slots left, is served one in the first round, then runs out in
                // the second and third rounds, after the purge.
                if n == b - 1 { demand.addDemand(source: 0, destination: 1, slots: 16 + 3) }
            } else if n == 0 {
                // Two flows into host 1 share its slots: the pair's record is still
                // circulating, with old demand, when batch `b` starts.
                demand.addDemand(source: 0, destination: 1, slots: 100)
                demand.addDemand(source: 2, destination: 1, slots: 100)
            }
            if n == b + 1 {
                demand.resetSource(0)
                demand.addDemand(source: 0, destination: 1, slots: new)
            }
        }
        func take(_ step: Step) { stepper.take(step, feed: feed, consume: consume) }
        func whole() {
            for step in [Step.feed, .firstRound, .finish, .route] { take(step) }
        }
        for _ in 0..<b { whole() }
        take(.feed)  // batch b
        if inLaterRound {
            take(.firstRound)
            take(.feed)  // b + 1: the purge and the new demand
        } else {
            take(.feed)  // b + 1: the purge and the new demand
            take(.firstRound)
        }
        take(.finish)
        take(.route)
        for _ in 0..<20 {
            take(.firstRound)
            take(.feed)
            take(.finish)
            take(.route)
        }
        let afterPurge = allocated.filter { $0.key > b }.values.reduce(0, +)
        #expect(afterPurge == Int(new), "batches \(allocated.keys.sorted()): \(allocated)")
        if inLaterRound { #expect(allocated[b] == 3, "batch \(b) allocated beyond the old demand") }
        #expect(pipeline.stages.reduce(0) { $0 + $1.statistics.postponedByPurge } > 0)
        #expect(pipeline.outstandingSlots == 0)
    }
}
