/**
 * Kernel operations on the netfilter side that run on the kernel worker thread: conntrack clean-up
 * and the like. Re-exported by ops.ts so the worker's table sees them.
 */
export {};
