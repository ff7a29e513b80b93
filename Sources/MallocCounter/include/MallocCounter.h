#ifndef FASTPASS_MALLOC_COUNTER_H
#define FASTPASS_MALLOC_COUNTER_H
#include <stdint.h>
/// Starts counting allocation calls made by any thread of this process.
void fp_malloc_counter_start(void);
/// Stops counting.
void fp_malloc_counter_stop(void);
/// Allocation calls (malloc, calloc, realloc, aligned variants) counted so far.
uint64_t fp_malloc_counter_allocations(void);
/// Bytes requested by those calls.
uint64_t fp_malloc_counter_bytes(void);
/// Sets both counts back to zero.
void fp_malloc_counter_reset(void);
#endif
