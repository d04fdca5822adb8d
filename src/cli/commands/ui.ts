/** `berth ui`: serves the live topology page on loopback (issue 15). */
import type { Command } from 'commander';
import type { ApiClient } from '../../api/client.js';

export function registerUiCommand(_program: Command, _api: () => ApiClient): void {}
