/** Kernel operations of trace (issue 15): read-only looks at what berth built. */
export {};
