// Linux calls Swift's Glibc module does not export (they need _GNU_SOURCE).
#ifndef FASTPASS_CPLATFORM_H
#define FASTPASS_CPLATFORM_H

/// Pins the calling thread to one CPU. Returns 0, or the error number.
int fp_pin_current_thread(int cpu);

/// The CPU the calling thread runs on, or -1.
int fp_current_cpu(void);

/// CPUs this process may run on.
int fp_available_cpus(void);

/// A spin-wait hint to the processor (x86 `pause`).
void fp_cpu_relax(void);

/// Asks for the cache line at `address` ahead of a write to it (a hint; never faults).
static inline void fp_prefetch_for_write(const void *address) { __builtin_prefetch(address, 1, 3); }

#endif
