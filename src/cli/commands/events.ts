/** `berth events`: the engine's network and container events as they happen (issue 15). */
import type { Command } from 'commander';
import type { ApiClient } from '../../api/client.js';

export function registerEventsCommand(_program: Command, _api: () => ApiClient): void {}
