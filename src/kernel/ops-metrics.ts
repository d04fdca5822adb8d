/** Kernel operations of metrics (issue 15): read-only looks at what berth built. */
export {};
