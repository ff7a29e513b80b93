import Testing

@testable import FastpassArbiter

/// The debug-build audit stops a process whose allocator breaks its promises: these run the
/// breach in a child process and expect it to fail.
@Suite("Allocator audit (debug builds)")
struct AllocatorAuditTests {
    #if DEBUG
        @Test("a host sending twice in one slot stops a debug build")
        func doubleSendIsCaught() async {
            await #expect(processExitsWith: .failure) {
                let batch = BatchAllocations(batchSize: 4, hostCount: 4, withdrawalCapacity: 1)
                // Host 0 sends to 1 and to 2 in slot 3 of the batch.
                let entries: [UInt64] = [0 | 1 << 16 | 3 << 32, 0 | 2 << 16 | 3 << 32]
                entries.withUnsafeBufferPointer { batch.replace(firstSlot: 64, with: $0) }
                AllocatorAudit(hostCount: 4).checkOnePerHostPerSlot(batch)
            }
        }

        @Test("a host receiving twice in one slot stops a debug build; one per slot passes")
        func doubleReceiveIsCaught() async {
            let fine = BatchAllocations(batchSize: 4, hostCount: 4, withdrawalCapacity: 1)
            let spread: [UInt64] = [0 | 1 << 16 | 0 << 32, 2 | 1 << 16 | 1 << 32, 1 | 0 << 16 | 0 << 32]
            spread.withUnsafeBufferPointer { fine.replace(firstSlot: 0, with: $0) }
            let audit = AllocatorAudit(hostCount: 4)
            audit.checkOnePerHostPerSlot(fine)
            // The same hosts and slots in the next batch are a new batch, not a repeat.
            spread.withUnsafeBufferPointer { fine.replace(firstSlot: 4, with: $0) }
            audit.checkOnePerHostPerSlot(fine)
            #expect(fine.totalCount == 3)
            await #expect(processExitsWith: .failure) {
                let batch = BatchAllocations(batchSize: 4, hostCount: 4, withdrawalCapacity: 1)
                let entries: [UInt64] = [0 | 3 << 16 | 2 << 32, 1 | 3 << 16 | 2 << 32]
                entries.withUnsafeBufferPointer { batch.replace(firstSlot: 0, with: $0) }
                AllocatorAudit(hostCount: 4).checkOnePerHostPerSlot(batch)
            }
        }

        @Test("demand that goes missing stops a debug build")
        func lostDemandIsCaught() async throws {
            await #expect(processExitsWith: .failure) {
                var statistics = TimeslotAllocatorStatistics()
                statistics.requestedSlots = 10
                statistics.allocatedSlots = 4
                let table = DemandTable(capacity: 16, hostCount: 4, reserve: 4, layout: .direct)
                AllocatorAudit.checkAccounting(
                    statistics, waitingInPairWords: 5, records: UnsafeBufferPointer(start: nil, count: 0),
                    more: UnsafeBufferPointer(start: nil, count: 0), table: table)
            }
        }
    #endif
}
