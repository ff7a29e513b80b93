/// The FCP traffic between the arbiter and hosts in other racks, which crosses the
/// uplinks of the arbiter's own rack (``ArbiterCoreConfiguration/controlRack``), and the
/// data booked on them: what sizes the ``ControlReservation`` kept free for it.
struct ControlTraffic {
    let rack: Int
    /// Bytes an FCP packet takes on the wire beyond its FCP bytes.
    let framingBytes: Int
    /// FCP wire bytes sent to and received from hosts outside ``rack`` since the last
    /// batch, the peak-held estimates the reservation is sized from, and the averages that
    /// decide whether one is needed.
    private var bytesOut = 0
    private var bytesIn = 0
    private var estimateOut = 0.0
    private var estimateIn = 0.0
    private var averageOut = 0.0
    private var averageIn = 0.0
    /// Inter-rack allocations leaving and entering the rack since the last batch, their
    /// averages, and the slots kept in the last batch.
    private var bookedOut = 0
    private var bookedIn = 0
    private var bookedAverageOut = 0.0
    private var bookedAverageIn = 0.0
    private var keptOut = 0
    private var keptIn = 0

    init(rack: Int, framingBytes: Int) {
        self.rack = rack
        self.framingBytes = framingBytes
    }

    /// An FCP packet of `bytes` sent to a host in `hostRack`.
    @inline(__always)
    mutating func sent(bytes: Int, toRack hostRack: Int) {
        if hostRack != rack { bytesOut &+= bytes &+ framingBytes }
    }

    /// An FCP packet of `bytes` received from a host in `hostRack`.
    @inline(__always)
    mutating func received(bytes: Int, fromRack hostRack: Int) {
        if hostRack != rack { bytesIn &+= bytes &+ framingBytes }
    }

    /// An allocation routed from a host in `sourceRack` to one in `destinationRack`.
    @inline(__always)
    mutating func booked(sourceRack: Int, destinationRack: Int) {
        if sourceRack == rack { bookedOut &+= 1 }
        if destinationRack == rack { bookedIn &+= 1 }
    }

    /// Sizes `reservation`, the slots kept free on the arbiter's rack, from the FCP bytes
    /// exchanged with other racks since the last batch: as many whole slots of the rack's
    /// links (all its usable spines) as those bytes fill, upwards in the slots when the allocations of a
    /// batch leave (a burst, once per batch; one slot more for the burst's spread over
    /// the arbiter's link) and downwards spread over the batch (the requests come in
    /// spread out). The size comes from an estimate that holds its peak and decays by 1/8
    /// per batch, so one quiet batch does not open the links to data just before a busy
    /// one.
    ///
    /// None while the slot headroom of the rack's links over a batch carries the average
    /// FCP bytes. At full bisection, none either while the links also carry the average
    /// data booked on them (the slots kept counted as booked, as demand would fill them):
    /// there the uplinks fill only when every host of the rack sends across at once, and a
    /// reservation decided on FCP bytes alone cost 0.4–0.6 % of the 128-host web-search
    /// throughput (4 % of a small data-mining run's when kept always). On an
    /// oversubscribed rack the uplinks run full whenever its hosts have demand across, and
    /// the booked count swings from batch to batch: deciding on it there left rack 0's
    /// uplinks over one packet waiting more often (ToR-up p99 1984 B at 2:1, 2240 B at
    /// 3:1, against 1600 B).
    ///
    /// Measured in the simulator (128 hosts, 4:1, web search at 60 %): the arbiter's
    /// rack's uplinks carried 1.78 Gbit/s of FCP each (17.8 %), its downlinks 0.57. One
    /// slot fewer upwards left rack 0's uplinks over one packet waiting 10–12 % of the
    /// time at 2:1, against 3–4 % with it.
    mutating func update(_ reservation: ControlReservation, topology: Topology, batchSize batch: Int, phase: Int) {
        let out = Double(bytesOut)
        let into = Double(bytesIn)
        bytesOut = 0
        bytesIn = 0
        estimateOut = max(out, estimateOut * 7 / 8)
        estimateIn = max(into, estimateIn * 7 / 8)
        averageOut += (out - averageOut) / 8
        averageIn += (into - averageIn) / 8
        var spines = 0
        for s in 0..<topology.spineCount where topology.isUsable(rack: rack, spine: s) { spines += 1 }
        let packet = Double(topology.configuration.slotBytes)
        // Bytes all of the rack's links carry in one slot, and a kept slot's bookable bytes.
        let perSlot = Double(spines) * topology.timeslotNanoseconds * topology.configuration.uplinkGbpsPerSpine / 8
        let bookable = Double(spines) * topology.linkRate.packetsPerSlot * packet
        guard perSlot > 0 else { return }
        bookedAverageOut += (Double(bookedOut) * packet + Double(keptOut) * bookable - bookedAverageOut) / 8
        bookedAverageIn += (Double(bookedIn) * packet + Double(keptIn) * bookable - bookedAverageIn) / 8
        bookedOut = 0
        bookedIn = 0
        let capacity = Double(batch) * perSlot
        let slack = capacity - Double(batch) * bookable
        let oversubscribed = bookable < Double(topology.hostsOfRack[rack].count) * packet
        keptOut =
            averageOut > slack && (oversubscribed || bookedAverageOut + averageOut > capacity)
            ? min(batch, Int((estimateOut / perSlot).rounded(.up)) + 1) : 0
        keptIn =
            averageIn > slack && (oversubscribed || bookedAverageIn + averageIn > capacity)
            ? min(batch, Int((estimateIn / perSlot).rounded(.up))) : 0
        reservation.set(rack: rack, upSlots: keptOut, downSlots: keptIn, phase: phase)
    }
}
