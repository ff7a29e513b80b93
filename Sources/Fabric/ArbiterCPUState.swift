/// The modelled arbiter CPU's state during a run: the receive queue, the communication
/// core's current round, the allocator cores' backlog, and what they did.
///
/// The buffers are sized once, so handling a packet allocates nothing.
struct ArbiterCPUState {
    enum Phase {
        case idle
        /// Reading up to ``ArbiterCPUConfiguration/ioBatch`` packets from the queue.
        case receiving
        /// Sending the packets built into ``sendBuffer``.
        case sending
    }

    let configuration: ArbiterCPUConfiguration

    // Receive queue.
    var queue = IndexFIFO()
    var queueLength = 0
    var queueMax = 0
    /// Time the queue held each length (ns), up to its capacity.
    var queueTime: [UInt64]
    var queueChangedAt: UInt64
    var drops: UInt64 = 0

    // Communication core.
    var phase = Phase.idle
    /// I/O batches done in the current phase of the round.
    var batches = 0
    /// The round stopped at its send bound with packets still to send.
    var moreToSend = false
    /// Packets of the receive batch in service.
    var inService: [Int32]
    var inServiceCount = 0
    /// Packets of the send batch in service: bytes at `k × sendStride`, lengths, addresses.
    var sendBuffer: [UInt8]
    var sendLengths: [Int]
    var sendAddresses: [UInt32]
    var sendCount = 0
    static let sendStride = 2048
    var busyNanoseconds: UInt64 = 0

    // Counted in either mode.
    var received: UInt64 = 0
    var sent: UInt64 = 0
    /// The start of the current load measurement: when, and the busy time and packets
    /// received then (the daemon measures over 100 ms; a run here lasts tens of ms).
    var loadWindowStart: UInt64 = 0
    var loadWindowBusy: UInt64 = 0
    var loadWindowReceived: UInt64 = 0
    static let loadWindowNanoseconds: UInt64 = 1_000_000

    // Allocator cores.
    /// When the allocator cores finish the work handed to them so far.
    var allocatorFreeAt: UInt64 = 0
    var allocatorWorkNanoseconds = 0.0
    /// The arbiter core's counters at the last look (a restarted core starts from 0).
    var allocatedSeen: UInt64 = 0
    var batchesSeen: UInt64 = 0
    var allocated: UInt64 = 0
    var slotsSkipped: UInt64 = 0
    var skippedSeen: UInt64 = 0

    init(_ configuration: ArbiterCPUConfiguration, now: UInt64) {
        self.configuration = configuration
        queueTime = [UInt64](repeating: 0, count: configuration.receiveQueuePackets + 1)
        queueChangedAt = now
        loadWindowStart = now
        inService = [Int32](repeating: 0, count: ArbiterCPUConfiguration.ioBatch)
        sendBuffer = [UInt8](repeating: 0, count: ArbiterCPUConfiguration.ioBatch * Self.sendStride)
        sendLengths = [Int](repeating: 0, count: ArbiterCPUConfiguration.ioBatch)
        sendAddresses = [UInt32](repeating: 0, count: ArbiterCPUConfiguration.ioBatch)
    }

    /// Accounts the time the queue spent at its present length; call before it changes.
    mutating func noteQueue(now: UInt64) {
        queueTime[queueLength] &+= now &- queueChangedAt
        queueChangedAt = now
    }

    /// Counts the allocator work the arbiter core did since the last look: per slot
    /// allocated (allocation and path selection) and per slot of each batch.
    mutating func noteAllocatorWork(allocated a: UInt64, batches b: UInt64, skipped s: UInt64, batchSize: Int) -> Double
    {
        // Saturating: a counter the core takes back (allocations withdrawn) is not work undone.
        let newAllocations = a > allocatedSeen ? a - allocatedSeen : 0
        let newBatches = b > batchesSeen ? b - batchesSeen : 0
        slotsSkipped &+= s > skippedSeen ? s - skippedSeen : 0
        allocatedSeen = a
        batchesSeen = b
        skippedSeen = s
        allocated &+= newAllocations
        let c = configuration
        let work =
            Double(newAllocations) * (c.allocationNanoseconds + c.pathNanoseconds)
            + Double(newBatches) * Double(batchSize) * c.slotNanoseconds
        allocatorWorkNanoseconds += work
        return work
    }

    /// The summary for the report, over `duration` ns ending at `now`.
    func summary(now: UInt64, duration: UInt64) -> ArbiterCPUSummary {
        var queueTime = self.queueTime
        queueTime[queueLength] &+= now &- queueChangedAt
        let seconds = Double(duration) / 1e9
        let handled = Double(received + sent)
        return ArbiterCPUSummary(
            modelled: configuration.enabled, receivedPerSecond: Double(received) / seconds,
            sentPerSecond: Double(sent) / seconds,
            communicationLoad: handled * Double(configuration.packetNanoseconds) / Double(duration),
            receiveQueueP99Packets: OccupancyHistogram.quantile(queueTime, 0.99, width: 1),
            receiveQueueMaxPackets: queueMax, receiveQueueDrops: drops,
            allocatorCoresNeeded: allocatorWorkNanoseconds / Double(duration),
            allocatorCores: configuration.allocatorCores, slotsSkipped: slotsSkipped,
            allocationsPerSecond: Double(allocated) / seconds)
    }
}
