/**
 * Test-only helpers for the firewall's integration tests: throwaway network namespaces (always
 * prefixed `bfw-`, so a leak is recognisable) and nft run inside them. Nothing here touches the
 * namespace the tests run in: every nft, ip link and sysctl goes through `ip netns exec` or `ip -n`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Why the integration tests cannot run here, or undefined when they can. */
export function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and nftables)';
  try {
    execFileSync('nft', ['--version'], { stdio: 'ignore' });
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'needs the nft and ip commands';
  }
  return undefined;
}

let counter = 0;

/** A fresh namespace named `bfw-<tag>-<pid>-<n>`; delete it with deleteNamespace in a finally. */
export function createNamespace(tag: string): string {
  const name = `bfw-${tag}-${process.pid}-${counter++}`;
  execFileSync('ip', ['netns', 'add', name]);
  return name;
}

/** Deletes a namespace this process created; errors are returned so cleanup can keep going. */
export function deleteNamespace(name: string): unknown {
  if (!name.startsWith('bfw-')) return new Error(`refusing to delete namespace ${name}: not a test namespace`);
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    return undefined;
  } catch (err) {
    return err;
  }
}

/** Runs a command inside a namespace and returns its stdout. */
export function inNs(ns: string, command: string, args: string[], timeoutMs = 10_000): string {
  return execFileSync('ip', ['netns', 'exec', ns, command, ...args], {
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * Loads an nft script in a namespace as one transaction. Node's child stdio are socketpairs, which
 * `nft -f -` cannot read, so the script goes through a temporary file.
 */
export function nftLoad(ns: string, script: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'bfw-nft-'));
  try {
    const file = join(dir, 'ruleset.nft');
    writeFileSync(file, script);
    try {
      inNs(ns, 'nft', ['-f', file], 60_000);
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? '';
      throw new Error(`nft -f failed in ${ns}: ${stderr}`, { cause: err });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One object of `nft -j list ruleset`, keyed by its kind (table, chain, set, map, rule…). */
type NftObject = Record<string, Record<string, unknown>>;

export function nftList(ns: string): NftObject[] {
  const parsed = JSON.parse(inNs(ns, 'nft', ['-j', 'list', 'ruleset'])) as { nftables: NftObject[] };
  return parsed.nftables;
}

/** Renders one element of nft JSON the way berth writes its key: `"br0"`, `10.0.0.0/24`, `tcp . 80`. */
function keyText(value: unknown, quoteStrings: boolean): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return quoteStrings ? `"${value}"` : value;
  if (Array.isArray(value)) return keyText(value[0], quoteStrings); // map entry: [key, value]
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if ('elem' in v) return keyText((v['elem'] as Record<string, unknown>)['val'], quoteStrings);
    if ('concat' in v) return (v['concat'] as unknown[]).map((p) => keyText(p, quoteStrings)).join(' . ');
    if ('prefix' in v) {
      const p = v['prefix'] as { addr: string; len: number };
      return `${p.addr}/${p.len}`;
    }
  }
  throw new Error(`unexpected nft JSON element ${JSON.stringify(value)}`);
}

/**
 * Every element of every set and map, as `family table set key` strings comparable with the
 * `add element` lines berth generates.
 */
export function nftElements(objects: NftObject[]): string[] {
  const out: string[] = [];
  for (const obj of objects) {
    const set = obj['set'] ?? obj['map'];
    if (!set) continue;
    const ifnames = set['type'] === 'ifname' || (Array.isArray(set['type']) && set['type'].every((t) => t === 'ifname'));
    for (const elem of (set['elem'] as unknown[] | undefined) ?? []) {
      out.push(`${String(set['family'])} ${String(set['table'])} ${String(set['name'])} ${keyText(elem, ifnames)}`);
    }
  }
  return out.sort();
}

/** `family table set key` of each element an incremental script adds or deletes. */
export function scriptElements(script: string): string[] {
  return script
    .trim()
    .split('\n')
    .map((line) => {
      const m = /^(?:add|delete) element (\S+ \S+ \S+) \{ (.*?)(?: comment "[^"]*")?(?: : .*)? \}$/.exec(line);
      if (!m) throw new Error(`not an element command: ${line}`);
      return `${m[1]} ${m[2]}`;
    })
    .sort();
}

/** Rules of one chain, as nft JSON expression lists. */
export function chainRules(objects: NftObject[], family: string, table: string, chain: string): unknown[] {
  return objects
    .map((o) => o['rule'])
    .filter((r): r is Record<string, unknown> => !!r && r['family'] === family && r['table'] === table && r['chain'] === chain)
    .map((r) => r['expr']);
}
