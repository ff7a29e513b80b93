#define _GNU_SOURCE
#include "DPDKShim.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifdef FASTPASS_HAVE_DPDK
#include <rte_config.h>
// SwiftPM drops -march, and DPDK's inline memcpy needs SSSE3 and up.
#pragma clang attribute push(__attribute__((target("sse3,ssse3,sse4.1,sse4.2,popcnt"))), apply_to = function)
#include <numa.h>
#include <pthread.h>
#include <sched.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_version.h>

static struct rte_mempool *pools[RTE_MAX_ETHPORTS];

int fp_dpdk_available(void) { return 1; }

const char *fp_dpdk_version(void) { return rte_version(); }

int fp_dpdk_eal_init(int argc, char **argv, char *error, size_t error_length) {
    // rte_eal_init pins the calling thread to the main lcore, and every thread created
    // after it inherits that: give the caller its CPUs back, and let the daemon pin the
    // threads it means to.
    cpu_set_t before;
    int saved = pthread_getaffinity_np(pthread_self(), sizeof before, &before) == 0;
    int r = rte_eal_init(argc, argv);
    if (saved) pthread_setaffinity_np(pthread_self(), sizeof before, &before);
    if (r >= 0) return 0;
    int e = rte_errno;
    const char *why;
    switch (e) {
    case EACCES: why = "permission denied (DPDK needs root, or CAP_SYS_ADMIN and CAP_NET_RAW)"; break;
    case EINVAL: why = "invalid EAL arguments"; break;
    case ENOMEM: why = "not enough memory (raise -m, or give it hugepages)"; break;
    case EALREADY: why = "the EAL is already initialised in this process"; break;
    case EFAULT: why = "the tailq configuration is corrupt"; break;
    case ENODEV: why = "memory setup failed (no hugepages? use --no-huge, or mount hugetlbfs)"; break;
    case ENOTSUP: why = "the EAL is not supported on this system"; break;
    case EPROTO: why = "the PCI bus is not present or unreadable (use --no-pci)"; break;
    case ENOEXEC: why = "a driver (PMD) failed to load"; break;
    case EBUSY: why = "another primary DPDK process holds the runtime directory (use --file-prefix or --no-shconf)"; break;
    default: why = rte_strerror(e); break;
    }
    snprintf(error, error_length, "rte_eal_init failed: %s (rte_errno %d)", why, e);
    return -(e ? e : EINVAL);
}

int fp_dpdk_port_count(void) { return (int)rte_eth_dev_count_avail(); }

int fp_dpdk_register_thread(void) {
    if (rte_lcore_id() != LCORE_ID_ANY) return 0;
    return rte_thread_register() == 0 ? 0 : -rte_errno;
}

int fp_dpdk_port_open(const char *name, uint16_t rx_descriptors, uint16_t tx_descriptors, uint32_t mbufs,
                      int32_t polling_cpu, fp_dpdk_port_info *info, char *error, size_t error_length) {
    uint16_t port = 0;
    memset(info, 0, sizeof(*info));
    if (name && name[0]) {
        if (rte_eth_dev_get_port_by_name(name, &port) != 0) {
            snprintf(error, error_length,
                     "no DPDK port named '%s' (%u probed): check --vdev / -a (the PCI allow-list) in eal_args",
                     name, (unsigned)rte_eth_dev_count_avail());
            return -ENODEV;
        }
    } else {
        int found = 0;
        RTE_ETH_FOREACH_DEV(port) { found = 1; break; }
        if (!found) {
            snprintf(error, error_length,
                     "DPDK found no port: give it a device with --vdev (e.g. net_af_packet0,iface=eth0) or -a PCI_ADDRESS in eal_args");
            return -ENODEV;
        }
    }
    struct rte_eth_dev_info dev;
    int r = rte_eth_dev_info_get(port, &dev);
    if (r != 0) {
        snprintf(error, error_length, "rte_eth_dev_info_get(port %u): %s", port, rte_strerror(-r));
        return r;
    }
    // The port's NUMA node; a virtual device has none, so take the polling CPU's, and
    // with no CPU named, let DPDK choose.
    int node = rte_eth_dev_socket_id(port);
    if (node < 0 && polling_cpu >= 0 && numa_available() >= 0) node = numa_node_of_cpu(polling_cpu);
    if (node < 0) node = SOCKET_ID_ANY;
    if (pools[port]) {
        snprintf(error, error_length, "DPDK port %u is already open in this process", port);
        return -EBUSY;
    }
    char pool_name[RTE_MEMPOOL_NAMESIZE];
    snprintf(pool_name, sizeof pool_name, "fp_pool_%u", port);
    struct rte_mempool *pool = rte_pktmbuf_pool_create(pool_name, mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, node);
    if (!pool) {
        int e = rte_errno;
        snprintf(error, error_length, "cannot create a pool of %u buffers on NUMA node %d: %s%s", mbufs, node,
                 rte_strerror(e), e == ENOMEM ? " (raise -m in eal_args)" : "");
        return -(e ? e : ENOMEM);
    }
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof conf);
    int offload = (dev.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0;
    if (offload) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
    const char *step = "rte_eth_dev_configure";
    r = rte_eth_dev_configure(port, 1, 1, &conf);
    if (r == 0) {
        step = "rte_eth_dev_adjust_nb_rx_tx_desc";
        r = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rx_descriptors, &tx_descriptors);
    }
    if (r == 0) {
        step = "rte_eth_rx_queue_setup";
        r = rte_eth_rx_queue_setup(port, 0, rx_descriptors, node, NULL, pool);
    }
    if (r == 0) {
        struct rte_eth_txconf txconf = dev.default_txconf;
        txconf.offloads = conf.txmode.offloads;
        step = "rte_eth_tx_queue_setup";
        r = rte_eth_tx_queue_setup(port, 0, tx_descriptors, node, &txconf);
    }
    if (r == 0) {
        step = "rte_eth_dev_start";
        r = rte_eth_dev_start(port);
    }
    if (r != 0) {
        snprintf(error, error_length, "%s(port %u, %s): %s", step, port, dev.driver_name, rte_strerror(r < 0 ? -r : r));
        rte_mempool_free(pool);
        return r < 0 ? r : -r;
    }
    pools[port] = pool;
    struct rte_ether_addr mac;
    rte_eth_macaddr_get(port, &mac);
    info->port = port;
    memcpy(info->mac, mac.addr_bytes, 6);
    info->numa_node = node;
    info->ipv4_checksum_offload = offload;
    snprintf(info->driver, sizeof info->driver, "%s", dev.driver_name ? dev.driver_name : "");
    rte_eth_dev_get_name_by_port(port, info->name);
    return 0;
}

int fp_dpdk_receive(uint16_t port, uint8_t *buffers, uint32_t stride, int32_t *lengths, int max) {
    struct rte_mbuf *mbufs[64];
    if (port >= RTE_MAX_ETHPORTS || !pools[port] || max <= 0) return 0;
    if (max > 64) max = 64;
    uint16_t n = rte_eth_rx_burst(port, 0, mbufs, (uint16_t)max);
    for (uint16_t i = 0; i < n; i++) {
        struct rte_mbuf *m = mbufs[i];
        uint32_t length = rte_pktmbuf_pkt_len(m);
        uint32_t copy = length < stride ? length : stride;
        uint8_t *to = buffers + (size_t)i * stride;
        const void *data = rte_pktmbuf_read(m, 0, copy, to);
        if (data != to) memcpy(to, data, copy);
        lengths[i] = (int32_t)length;
        rte_pktmbuf_free(m);
    }
    return n;
}

int fp_dpdk_send(uint16_t port, const uint8_t *buffers, uint32_t stride, const int32_t *lengths, int count,
                 int checksum_offload) {
    struct rte_mbuf *mbufs[64];
    if (port >= RTE_MAX_ETHPORTS || !pools[port] || count <= 0) return 0;
    if (count > 64) count = 64;
    if (rte_pktmbuf_alloc_bulk(pools[port], mbufs, (unsigned)count) != 0) return 0;
    int ready = 0;
    for (int i = 0; i < count; i++) {
        struct rte_mbuf *m = mbufs[i];
        int32_t length = lengths[i];
        char *to = length > 0 && (uint32_t)length <= stride && length <= rte_pktmbuf_tailroom(m)
                       ? rte_pktmbuf_append(m, (uint16_t)length)
                       : NULL;
        if (!to) {
            // Longer than a buffer (or empty): dropped, not sent cut.
            rte_pktmbuf_free(m);
            continue;
        }
        memcpy(to, buffers + (size_t)i * stride, (size_t)length);
        if (checksum_offload) {
            m->l2_len = 14;
            m->l3_len = 20;
            m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
        }
        mbufs[ready++] = m;
    }
    count = ready;
    uint16_t sent = rte_eth_tx_burst(port, 0, mbufs, (uint16_t)count);
    if (sent < count) rte_pktmbuf_free_bulk(mbufs + sent, (unsigned)(count - sent));
    return sent;
}

uint64_t fp_dpdk_receive_missed(uint16_t port) {
    struct rte_eth_stats s;
    if (port >= RTE_MAX_ETHPORTS || !pools[port]) return 0;
    if (rte_eth_stats_get(port, &s) != 0) return 0;
    return s.imissed + s.rx_nombuf;
}

void fp_dpdk_port_close(uint16_t port) {
    if (port >= RTE_MAX_ETHPORTS || !pools[port]) return;
    rte_eth_dev_stop(port);
    rte_eth_dev_close(port);
    if (pools[port]) {
        rte_mempool_free(pools[port]);
        pools[port] = NULL;
    }
}

#pragma clang attribute pop
#else

int fp_dpdk_available(void) { return 0; }
const char *fp_dpdk_version(void) { return ""; }
int fp_dpdk_eal_init(int argc, char **argv, char *error, size_t error_length) {
    (void)argc; (void)argv;
    snprintf(error, error_length, "this build has no DPDK support (build with: swift build --traits DPDK)");
    return -ENOTSUP;
}
int fp_dpdk_port_count(void) { return 0; }
int fp_dpdk_register_thread(void) { return -ENOTSUP; }
int fp_dpdk_port_open(const char *name, uint16_t rx_descriptors, uint16_t tx_descriptors, uint32_t mbufs,
                      int32_t polling_cpu, fp_dpdk_port_info *info, char *error, size_t error_length) {
    (void)name; (void)rx_descriptors; (void)tx_descriptors; (void)mbufs; (void)polling_cpu;
    memset(info, 0, sizeof(*info));
    snprintf(error, error_length, "this build has no DPDK support (build with: swift build --traits DPDK)");
    return -ENOTSUP;
}
int fp_dpdk_receive(uint16_t port, uint8_t *buffers, uint32_t stride, int32_t *lengths, int max) {
    (void)port; (void)buffers; (void)stride; (void)lengths; (void)max;
    return 0;
}
int fp_dpdk_send(uint16_t port, const uint8_t *buffers, uint32_t stride, const int32_t *lengths, int count,
                 int checksum_offload) {
    (void)port; (void)buffers; (void)stride; (void)lengths; (void)count; (void)checksum_offload;
    return 0;
}
uint64_t fp_dpdk_receive_missed(uint16_t port) { (void)port; return 0; }
void fp_dpdk_port_close(uint16_t port) { (void)port; }
#endif
