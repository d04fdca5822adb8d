import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDnsperf } from '../../../bench/lib/dnsperf.js';

// dnsperf 2.10's summary, as it prints it.
const OUTPUT = `DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 10.83.0.1 -p 53 -d /tmp/x.dnsperf -q 32 -l 2 -t 1
[Status] Sending queries (to 10.83.0.1:53)
[Status] Started at: Sun Dec  6 11:20:01 2026
[Status] Stopping after 2.000000 seconds
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         90210
  Queries completed:    90190 (99.98%)
  Queries lost:         20 (0.02%)

  Response codes:       NOERROR 90180 (99.99%), SERVFAIL 6 (0.01%), NXDOMAIN 4 (0.00%)
  Average packet size:  request 31, reply 47
  Run time (s):         2.000132
  Queries per second:   45092.025727

  Average Latency (s):  0.000702 (min 0.000041, max 0.010012)
  Latency StdDev (s):   0.000311
`;

test('parseDnsperf: counts, qps, non-NOERROR answers as failures, mean latency in µs', () => {
  const r = parseDnsperf(OUTPUT);
  assert.deepEqual(
    { sent: r.sent, answered: r.answered, lost: r.lost, failed: r.failed, firstFailure: r.firstFailure, seconds: r.seconds, qps: Math.round(r.qps) },
    { sent: 90210, answered: 90190, lost: 20, failed: 10, firstFailure: 'SERVFAIL', seconds: 2.000132, qps: 45092 },
  );
  assert.equal(Math.round(r.p50us), 702);
});

test('parseDnsperf: output without a summary is an error naming what is missing', () => {
  assert.throws(() => parseDnsperf('Error: socket: Permission denied\n'), /Queries sent/);
});
