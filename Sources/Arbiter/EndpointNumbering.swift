import FastpassProtocol

/// How endpoints name hosts: a registered (extended) endpoint by topology node id, any
/// other by the reference id (the 8-bit hash of the host's MAC address); and whether a
/// fabric's allocations can be told in reference numbering at all.
struct EndpointNumbering {
    private let topology: Topology
    private let referenceIDs: [UInt16]
    /// Whether allocations can be told in reference numbering: slots at least as long as
    /// the reference's (never two of ours in one of theirs), node ids within 14 bits,
    /// spines within 2 bits, and batches no further ahead than the 64 reference slots an
    /// endpoint accepts early (`aheadNanoseconds`, the end of a batch at the most
    /// lookahead).
    let referenceNumberingWorks: Bool

    init(topology: Topology, aheadNanoseconds: Double) {
        self.topology = topology
        referenceIDs = topology.configuration.referenceEndpoints ? topology.referenceIDs : []
        referenceNumberingWorks =
            topology.timeslotNanoseconds >= Topology.referenceTimeslotNanoseconds && topology.spineCount <= 4
            && topology.nodeIDs.allSatisfy { $0.rawValue <= NodeID.referenceLimit }
            && aheadNanoseconds <= 64 * Topology.referenceTimeslotNanoseconds
    }

    /// The host an endpoint means by `node`: a topology node id for a registered
    /// (extended) endpoint, a reference id (MAC hash) otherwise.
    func host(named node: NodeID, extended: Bool) -> Int? {
        if extended { return topology.index(of: node) }
        guard node.rawValue < 256 else { return nil }
        return topology.index(ofReferenceID: UInt16(node.rawValue))
    }

    /// The id an endpoint, registered (`extended`) or not, uses for host `destination`;
    /// nil for an unregistered one on a fabric without reference ids.
    @inline(__always)
    func nodeID(of destination: Int, extended: Bool) -> NodeID? {
        if extended { return topology.nodeIDs[destination] }
        guard !referenceIDs.isEmpty else { return nil }
        return NodeID(UInt32(referenceIDs[destination]))
    }
}
