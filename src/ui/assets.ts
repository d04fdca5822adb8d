/**
 * The files the page is made of: its HTML (a TypeScript string module), its script (compiled by
 * tsc next to this file, from page/app.ts) and cytoscape with its dagre layout, read from
 * node_modules (there is no CDN to fetch them from). Each is read once, at start, so a missing
 * file is an error when `berth ui` starts, not a broken page later.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { INDEX_HTML } from './page/index-html.js';

export interface Asset {
  type: string;
  body: Buffer;
}

const JS = 'text/javascript; charset=utf-8';

/** By URL path. */
export function loadAssets(): Map<string, Asset> {
  const require = createRequire(import.meta.url);
  const read = (file: string, what: string, fix: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new Error(`cannot read ${what} (${file}): ${(err as Error).message}; ${fix}`);
    }
  };
  const vendor = (spec: string) => {
    let file: string;
    try {
      file = require.resolve(spec);
    } catch {
      throw new Error(`cannot find ${spec} in node_modules: install berth's dependencies (npm ci)`);
    }
    return read(file, spec, 'install berth\'s dependencies (npm ci)');
  };
  return new Map<string, Asset>([
    ['/', { type: 'text/html; charset=utf-8', body: Buffer.from(INDEX_HTML) }],
    ...['app.js', 'graph-elements.js'].map((f): [string, Asset] => [`/${f}`, { type: JS, body: read(fileURLToPath(new URL(`./page/${f}`, import.meta.url)), 'the page script', 'build berth first (npx tsc -p tsconfig.json)') }]),
    ['/vendor/cytoscape.min.js', { type: JS, body: vendor('cytoscape/dist/cytoscape.min.js') }],
    // The UMD build bundles dagre and registers itself with window.cytoscape.
    ['/vendor/cytoscape-dagre.js', { type: JS, body: vendor('cytoscape-dagre') }],
  ]);
}
