#ifndef FASTPASS_DPDK_SHIM_H
#define FASTPASS_DPDK_SHIM_H
// The few DPDK calls the Swift backend needs, in plain C types: Swift cannot reach
// mbuf fields or DPDK's macros, and Debian's libdpdk.pc does not parse in SwiftPM.
// Every function exists in every build; without the DPDK trait they fail with ENOTSUP,
// so the rest of the package compiles and can say why instead of failing to link.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// What fp_dpdk_port_open found out about the port.
typedef struct fp_dpdk_port_info {
    uint16_t port;
    uint8_t mac[6];
    /// The NUMA node the mempool was created on (-1: any).
    int32_t numa_node;
    /// Whether the port computes IPv4 header checksums (TX offload).
    int32_t ipv4_checksum_offload;
    char driver[64];
    char name[64];
} fp_dpdk_port_info;

/// 1 when this build links DPDK, 0 otherwise.
int fp_dpdk_available(void);
/// "DPDK 22.11.x", or "" without DPDK.
const char *fp_dpdk_version(void);
/// rte_eal_init with these arguments (argv[0] is the program name). 0, or a negative
/// errno with a reason in `error`.
int fp_dpdk_eal_init(int argc, char **argv, char *error, size_t error_length);
/// Gives the calling thread an lcore id, so the mempool serves it from a per-thread cache
/// instead of its shared ring. 0, or a negative errno.
int fp_dpdk_register_thread(void);
/// Ports DPDK probed.
int fp_dpdk_port_count(void);
/// Sets up port `name` (a device name such as "net_af_packet0" or a PCI address; NULL or
/// "" for the first port) with one RX and one TX queue and a pool of `mbufs` buffers,
/// and starts it. The pool goes on the port's NUMA node, or for a device without one (a
/// virtual device) on `polling_cpu`'s (-1: wherever DPDK likes). 0, or a negative errno
/// with a reason in `error`.
int fp_dpdk_port_open(const char *name, uint16_t rx_descriptors, uint16_t tx_descriptors, uint32_t mbufs,
                      int32_t polling_cpu, fp_dpdk_port_info *info, char *error, size_t error_length);
/// Receives up to `max` frames, copying frame i into buffers + i*stride (at most stride
/// bytes) and its full length into lengths[i]. Returns how many.
int fp_dpdk_receive(uint16_t port, uint8_t *buffers, uint32_t stride, int32_t *lengths, int max);
/// Sends `count` frames from buffers + i*stride of lengths[i] bytes. With `checksum_offload`
/// the port fills in each IPv4 header checksum (frames must be Ethernet + 20-byte IPv4).
/// Returns how many the port took; the rest are freed.
int fp_dpdk_send(uint16_t port, const uint8_t *buffers, uint32_t stride, const int32_t *lengths, int count,
                 int checksum_offload);
/// Frames the port dropped on receive (no buffer or queue full), from its counters.
uint64_t fp_dpdk_receive_missed(uint16_t port);
/// Stops and closes the port.
void fp_dpdk_port_close(uint16_t port);

#ifdef __cplusplus
}
#endif
#endif
