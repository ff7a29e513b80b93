// Field by field, not by reflection: a counter renamed in a statistics struct fails to
// compile here, and StatusCountersTests fails when one is added there but not here.

import FastpassAgent
import FastpassArbiter
import FastpassProtocol
import FastpassStatus
import PacketIO

extension ArbiterCoreCounters {
    /// The status group of these counters, one by one (a counter missing here fails
    /// `StatusCountersTests`).
    public init(_ s: ArbiterCoreStatistics) {
        self.init()
        packetsReceived = s.packetsReceived
        packetsFromUnknownHosts = s.packetsFromUnknownHosts
        packetsDropped = s.packetsDropped
        packetsOutOfSync = s.packetsOutOfSync
        packetsSent = s.packetsSent
        encodeFailures = s.encodeFailures
        demandToUnknownDestination = s.demandToUnknownDestination
        demandToSelf = s.demandToSelf
        demandToRemovedHost = s.demandToRemovedHost
        batchesAllocated = s.batchesAllocated
        slotsSkipped = s.slotsSkipped
        allocationsRecorded = s.allocationsRecorded
        allocationsStale = s.allocationsStale
        allocationsRequestedAgain = s.allocationsRequestedAgain
        allocationsUnencodable = s.allocationsUnencodable
        allocationsUnroutable = s.allocationsUnroutable
        allocationsOffPinnedSpine = s.allocationsOffPinnedSpine
        allocatorRefusals = s.allocatorRefusals
        allocationsPurged = s.allocationsPurged
        allocationsLate = s.allocationsLate
        commandsDelayed = s.commandsDelayed
        demandDropped = s.demandDropped
        allocationsExpiredUnsent = s.allocationsExpiredUnsent
        allocationPacketsSent = s.allocationPacketsSent
        sourcesHeld = s.sourcesHeld
        roundTripSamples = s.roundTripSamples
        sendTimeoutChanges = s.sendTimeoutChanges
        packingChanges = s.packingChanges
        registrations = s.registrations
        refusals = s.refusals
        endpointResets = s.endpointResets
    }
}

extension AllocatorCounters {
    /// The status group of these counters, one by one (a counter missing here fails
    /// `StatusCountersTests`).
    public init(_ s: TimeslotAllocatorStatistics) {
        self.init()
        requestedSlots = s.requestedSlots
        refusedSlots = s.refusedSlots
        refusals = s.refusals
        allocatedSlots = s.allocatedSlots
        withdrawnSlots = s.withdrawnSlots
        purgedSlots = s.purgedSlots
        unroutable = s.unroutable
        lostSlots = s.lostSlots
    }
}

extension PacketIOCounters {
    /// The status group of these counters, one by one (a counter missing here fails
    /// `StatusCountersTests`).
    public init(_ s: PacketIOStatistics) {
        self.init()
        received = s.received
        receiveBatches = s.receiveBatches
        tooLong = s.tooLong
        badHeader = s.badHeader
        sent = s.sent
        sendBatches = s.sendBatches
        sendDropped = s.sendDropped
        notForUs = s.notForUs
        arpAnswered = s.arpAnswered
        arpRequestsSent = s.arpRequestsSent
        unresolved = s.unresolved
        receiveMissed = s.receiveMissed
    }
}

extension FCPCounters {
    /// The status group of these counters, one by one (a counter missing here fails
    /// `StatusCountersTests`).
    public init(_ s: FCPConnectionStatistics) {
        self.init()
        rxPackets = s.rxPackets
        rxTooShort = s.rxTooShort
        rxChecksumError = s.rxChecksumError
        rxUnknownPayload = s.rxUnknownPayload
        rxIncompleteReset = s.rxIncompleteReset
        rxIncompleteAlloc = s.rxIncompleteAlloc
        rxIncompleteRequests = s.rxIncompleteRequests
        rxIncompleteAck = s.rxIncompleteAck
        rxDuplicatePackets = s.rxDuplicatePackets
        sequenceBeforeReceiveWindow = s.sequenceBeforeReceiveWindow
        receiveWindowJumped = s.receiveWindowJumped
        rxOutOfOrder = s.rxOutOfOrder
        tooEarlyAck = s.tooEarlyAck
        ackedPackets = s.ackedPackets
        timeoutPackets = s.timeoutPackets
        fallOffOutWindow = s.fallOffOutWindow
        neverAckedPackets = s.neverAckedPackets
        resetPayloads = s.resetPayloads
        redundantReset = s.redundantReset
        resetBothRecentLastResetWins = s.resetBothRecentLastResetWins
        resetBothRecentPayloadWins = s.resetBothRecentPayloadWins
        resetLastRecentPayloadOld = s.resetLastRecentPayloadOld
        resetLastOldPayloadRecent = s.resetLastOldPayloadRecent
        resetBothOld = s.resetBothOld
        resetFromBadPackets = s.resetFromBadPackets
        noResetBecauseRecent = s.noResetBecauseRecent
        protocolResets = s.protocolResets
        forcedResets = s.forcedResets
        committedPackets = s.committedPackets
        reprogrammedTimer = s.reprogrammedTimer
        timeoutHandlerRuns = s.timeoutHandlerRuns
        ackPayloads = s.ackPayloads
        informativeAckPayloads = s.informativeAckPayloads
        rxTooLong = s.rxTooLong
        rxIncompleteExtension = s.rxIncompleteExtension
        rxDroppedDuplicate = s.rxDroppedDuplicate
        rxAuthenticationFailed = s.rxAuthenticationFailed
        rxStaleEpoch = s.rxStaleEpoch
        rxMissingEpoch = s.rxMissingEpoch
    }
}

extension ArbiterSessionCounters {
    /// The status group of these counters, one by one (a counter missing here fails
    /// `StatusCountersTests`).
    public init(_ s: ArbiterSessionStatistics) {
        self.init()
        destinationTableFull = s.destinationTableFull
        demandSlots = s.demandSlots
        withdrawnSlots = s.withdrawnSlots
        allocationsRecorded = s.allocationsRecorded
        allocationsSent = s.allocationsSent
        allocationsFellOff = s.allocationsFellOff
        allocationsExpiredUnsent = s.allocationsExpiredUnsent
        allocationsRejected = s.allocationsRejected
        allocationsUnencodable = s.allocationsUnencodable
        demandDeferred = s.demandDeferred
        reportEntriesSent = s.reportEntriesSent
        hellosReceived = s.hellosReceived
        registrations = s.registrations
        refusals = s.refusals
        unexpectedPayloads = s.unexpectedPayloads
        encodeFailures = s.encodeFailures
        packetsOverBudget = s.packetsOverBudget
        budgetsSent = s.budgetsSent
    }
}

extension EndpointSessionCounters {
    /// The status group of these counters, one by one (a counter missing here fails
    /// `StatusCountersTests`).
    public init(_ s: EndpointSessionStatistics) {
        self.init()
        allocationsAdmitted = s.allocationsAdmitted
        allocationsTooLate = s.allocationsTooLate
        allocationsPremature = s.allocationsPremature
        allocationsUnwanted = s.allocationsUnwanted
        allocationsToUnknownDestinations = s.allocationsToUnknownDestinations
        allocationsSlotTaken = s.allocationsSlotTaken
        illegalDescriptors = s.illegalDescriptors
        allocationsExpired = s.allocationsExpired
        allocationsUsed = s.allocationsUsed
        allocationPayloads = s.allocationPayloads
        allocationsLost = s.allocationsLost
        allocationsDroppedByReset = s.allocationsDroppedByReset
        reportsForUnknownDestinations = s.reportsForUnknownDestinations
        destinationTableFull = s.destinationTableFull
        unencodableDestinations = s.unencodableDestinations
        requestEntriesSent = s.requestEntriesSent
        giveBackEntriesSent = s.giveBackEntriesSent
        hellosSent = s.hellosSent
        welcomesReceived = s.welcomesReceived
        refusals = s.refusals
        fallbacks = s.fallbacks
        ignoredExtensions = s.ignoredExtensions
        rejectedWelcomes = s.rejectedWelcomes
        encodeFailures = s.encodeFailures
        slotsWithdrawn = s.slotsWithdrawn
        allocationsArrivedAfterLoss = s.allocationsArrivedAfterLoss
        overcountsCorrected = s.overcountsCorrected
        reportsAboveRequest = s.reportsAboveRequest
        budgetsApplied = s.budgetsApplied
        packetsAboveBudget = s.packetsAboveBudget
        backoffs = s.backoffs
        probes = s.probes
    }
}

extension AgentCounters {
    /// The status group of these counters, one by one (a counter missing here fails
    /// `StatusCountersTests`).
    public init(_ s: AgentStatistics) {
        self.init()
        packetsQueued = s.packetsQueued
        bytesQueued = s.bytesQueued
        droppedPoolFull = s.droppedPoolFull
        droppedQueueFull = s.droppedQueueFull
        droppedOversize = s.droppedOversize
        droppedNoDemand = s.droppedNoDemand
        slotsRequested = s.slotsRequested
        slotsUsed = s.slotsUsed
        slotsMissed = s.slotsMissed
        allocationsUnused = s.allocationsUnused
        allocationsForUnknownPeers = s.allocationsForUnknownPeers
        slotsGivenBack = s.slotsGivenBack
        packetsReleased = s.packetsReleased
        releasesAfterSlot = s.releasesAfterSlot
        controlPacketsSent = s.controlPacketsSent
        controlBytesSent = s.controlBytesSent
        controlEncodeFailures = s.controlEncodeFailures
        packetsUnscheduled = s.packetsUnscheduled
    }
}

extension AgentIOCounters {
    /// The same counters (``AgentIOStatistics`` is this type), for symmetry with the other
    /// groups.
    public init(_ s: AgentIOStatistics) { self = s }
}
