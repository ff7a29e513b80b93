void fp_malloc_counter_placeholder(void) {}
