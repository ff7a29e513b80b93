import FastpassProtocol

/// The peers an agent has queued packets towards, numbered densely in the order they were
/// first used, and found by node id when their allocations come.
///
/// An agent may send to every host of the fabric, but one host talks to few of them: its
/// per-destination state (queues, promised demand) lives at these dense indices, so it
/// grows with the peers in use, not with the fabric (4 096 agents holding full tables for
/// 4 095 peers each took gigabytes). What remains per peer is this table's 4-byte index.
/// Activating a peer allocates only when more peers are in use than ever before.
struct ActivePeers {
    /// Each peer's dense index, -1 for a peer never used.
    private var indexOfPeer: [Int32]
    /// Each dense index's peer.
    private(set) var peers: [Int32] = []
    /// Open addressing from node id to dense index, at most half full; -1 marks a free bucket.
    private var bucketNodes: [UInt32]
    private var bucketIndex: [Int32]
    private var mask: Int

    init(peerCount: Int) {
        indexOfPeer = [Int32](repeating: -1, count: peerCount)
        bucketNodes = [UInt32](repeating: 0, count: 16)
        bucketIndex = [Int32](repeating: -1, count: 16)
        mask = 15
    }

    /// Peers in use.
    var count: Int { peers.count }

    /// The dense index of `peer`, nil when it was never used.
    @inline(__always)
    func index(of peer: Int) -> Int? {
        let i = indexOfPeer[peer]
        return i >= 0 ? Int(i) : nil
    }

    /// The dense index of the peer named `node`, nil when no peer in use has that name.
    func index(ofNode node: NodeID) -> Int? {
        var b = Self.bucket(node.rawValue) & mask
        while bucketIndex[b] >= 0 {
            if bucketNodes[b] == node.rawValue { return Int(bucketIndex[b]) }
            b = (b + 1) & mask
        }
        return nil
    }

    /// Gives `peer` (named `node`) the next dense index; it must not be in use yet.
    mutating func activate(_ peer: Int, node: NodeID) -> Int {
        precondition(indexOfPeer[peer] < 0, "peer \(peer) is already in use")
        let i = peers.count
        peers.append(Int32(peer))
        indexOfPeer[peer] = Int32(i)
        if peers.count * 2 > bucketNodes.count { rehash(buckets: bucketNodes.count * 2) }
        insert(node.rawValue, index: i)
        return i
    }

    @inline(__always)
    private static func bucket(_ key: UInt32) -> Int {
        Int(truncatingIfNeeded: (UInt64(key) &* 0x9E37_79B9_7F4A_7C15) >> 32)
    }

    private mutating func insert(_ node: UInt32, index: Int) {
        var b = Self.bucket(node) & mask
        while bucketIndex[b] >= 0 { b = (b + 1) & mask }
        bucketNodes[b] = node
        bucketIndex[b] = Int32(index)
    }

    private mutating func rehash(buckets: Int) {
        let nodes = (0..<bucketNodes.count).compactMap {
            bucketIndex[$0] >= 0 ? (bucketNodes[$0], bucketIndex[$0]) : nil
        }
        bucketNodes = [UInt32](repeating: 0, count: buckets)
        bucketIndex = [Int32](repeating: -1, count: buckets)
        mask = buckets - 1
        for (node, index) in nodes { insert(node, index: Int(index)) }
    }
}
