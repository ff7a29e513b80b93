import FastpassProtocol
import Testing

@testable import FastpassAgent

/// Only the peers an agent uses get per-destination state; they must be found by peer and
/// by node however many there are.
@Suite("Active peers")
struct ActivePeersTests {
    @Test func peersAreNumberedInOrderOfUseAndFoundByNode() {
        var active = ActivePeers(peerCount: 4095)
        #expect(active.count == 0 && active.index(of: 4000) == nil)
        let used = (0..<200).map { ($0 * 37) % 4095 }
        for (k, peer) in used.enumerated() {
            let index = active.activate(peer, node: NodeID(UInt32(peer + 10_000)))
            #expect(index == k)
        }
        #expect(active.count == 200)
        for (k, peer) in used.enumerated() {
            #expect(active.index(of: peer) == k)
            #expect(active.index(ofNode: NodeID(UInt32(peer + 10_000))) == k)
            #expect(active.peers[k] == Int32(peer))
        }
        #expect(active.index(of: 1) == nil)
        #expect(active.index(ofNode: NodeID(10_001)) == nil)
    }
}
