/**
 * The topology page's script (runs in the browser; served compiled, as /app.js). It draws the
 * daemon's topology with cytoscape and its dagre layout, fetches it again whenever the event
 * stream says something changed, shows a clicked container's inspect, and traces the path
 * between two selected containers. `window.berth` exposes the graph for tests and the console.
 */
import type cytoscapeModule from 'cytoscape';
import type { Topology } from '../../engine/topology.js';
import { toElements, type GraphElement } from './graph-elements.js';

declare const cytoscape: typeof cytoscapeModule;

/** Events come in bursts (a container start is several): one fetch for the whole burst. */
const COALESCE_MS = 50;

interface TraceAnswer {
  reachable: boolean;
  hops: { step: string; ok: boolean; detail: string }[];
  failure?: { step: string; reason: string; fix: string };
}

const $ = (id: string) => document.getElementById(id)!;

const labelWidth = (label: string) => Math.max(40, Math.max(...label.split('\n').map((l) => l.length)) * 6 + 16);
const labelHeight = (label: string) => label.split('\n').length * 12 + 12;

const cy = cytoscape({
  container: $('graph'),
  wheelSensitivity: 0.3,
  style: [
    {
      selector: 'node',
      style: {
        label: 'data(label)',
        'text-wrap': 'wrap',
        'text-valign': 'center',
        'font-size': 10,
        'font-family': 'ui-monospace, monospace',
        shape: 'round-rectangle',
        width: (n: cytoscapeModule.NodeSingular) => labelWidth(n.data('label') as string),
        height: (n: cytoscapeModule.NodeSingular) => labelHeight(n.data('label') as string),
        'border-width': 1,
        'border-color': '#556',
      },
    },
    { selector: 'node[kind = "host"]', style: { 'background-color': '#1d2733', color: '#fff', 'font-weight': 'bold' } },
    { selector: 'node[kind = "network"]', style: { 'background-color': '#3b6ea5', color: '#fff', shape: 'rectangle' } },
    { selector: 'node[kind = "hostlink"]', style: { 'background-color': '#d7e3f0', shape: 'ellipse' } },
    { selector: 'node[kind = "interface"]', style: { 'background-color': '#8fb8de', shape: 'ellipse' } },
    { selector: 'node[kind = "container"]', style: { 'background-color': '#e3a21a', 'font-weight': 'bold' } },
    { selector: 'node[kind = "port"]', style: { 'background-color': '#f2e6c9', shape: 'tag' } },
    { selector: 'node[kind = "remote-endpoint"]', style: { 'background-color': '#cfc6e0' } },
    { selector: 'node[?bad]', style: { 'border-color': '#b3261e', 'border-width': 3 } },
    { selector: 'node:selected', style: { 'border-color': '#2e8540', 'border-width': 4 } },
    {
      selector: 'edge',
      style: {
        width: 1.5,
        'line-color': '#99a',
        'target-arrow-color': '#99a',
        'curve-style': 'bezier',
        label: 'data(label)',
        'font-size': 8,
        color: '#556',
        'text-background-color': '#fff',
        'text-background-opacity': 0.8,
      },
    },
    { selector: 'edge[kind = "veth"]', style: { 'line-style': 'dashed', width: 2.5, 'line-color': '#3b6ea5' } },
    { selector: 'edge[kind = "vxlan"]', style: { 'line-style': 'dotted', width: 3, 'line-color': '#7a4fb5', 'target-arrow-shape': 'triangle' } },
    { selector: 'edge[kind = "dnat"], edge[kind = "publishes"]', style: { 'line-color': '#c9a440', 'target-arrow-shape': 'triangle' } },
    { selector: 'edge[?bad]', style: { 'line-color': '#b3261e' } },
  ],
});

/** Containers in the order they were selected: the first two are a trace's ends. */
let picked: string[] = [];
let latest: Topology | undefined;
let refreshes = 0;
(window as unknown as { berth: unknown }).berth = {
  cy,
  get topology() {
    return latest;
  },
  get refreshes() {
    return refreshes;
  },
};

function draw(t: Topology): void {
  latest = t;
  const elements = toElements(t);
  const wanted = new Set(elements.map((e) => e.data.id));
  const drawn = cy.elements().map((e) => e.id());
  const same = wanted.size === drawn.length && drawn.every((id) => wanted.has(id));
  cy.batch(() => {
    if (same) {
      for (const e of elements) cy.getElementById(e.data.id).data(e.data);
      return;
    }
    for (const id of drawn) if (!wanted.has(id)) cy.getElementById(id).remove();
    cy.add(elements.filter((e: GraphElement) => cy.getElementById(e.data.id).empty()));
    for (const e of elements) cy.getElementById(e.data.id).data(e.data);
  });
  if (!same) cy.layout({ name: 'dagre', rankDir: 'TB', nodeSep: 24, rankSep: 50, padding: 20, animate: false } as cytoscapeModule.LayoutOptions).run();
  picked = picked.filter((id) => !cy.getElementById(id).empty());
  const running = t.containers.filter((c) => c.state === 'running').length;
  $('summary').textContent = `${t.hosts.length} host(s) · ${t.networks.length} networks · ${running}/${t.containers.length} containers running · updated ${new Date().toLocaleTimeString()}`;
}

async function fetchJson<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  if (!res.ok) throw new Error((body as { message?: string } | undefined)?.message ?? `HTTP ${res.status}: ${text}`);
  return body as T;
}

let fetching = false;
let again = false;
let timer: ReturnType<typeof setTimeout> | undefined;

async function refresh(): Promise<void> {
  if (fetching) {
    again = true;
    return;
  }
  fetching = true;
  try {
    do {
      again = false;
      draw(await fetchJson<Topology>('/api/topology'));
      refreshes++;
    } while (again);
  } catch (err) {
    $('summary').textContent = `cannot load the topology: ${(err as Error).message}`;
  } finally {
    fetching = false;
  }
}

function soon(): void {
  timer ??= setTimeout(() => {
    timer = undefined;
    void refresh();
  }, COALESCE_MS);
}

function follow(): void {
  const status = $('status');
  const stream = new EventSource('/api/topology/stream');
  // Also on a reconnect: whatever happened while the stream was down is fetched.
  stream.onopen = () => {
    status.textContent = 'live';
    status.className = 'live';
    soon();
  };
  stream.onmessage = () => soon();
  stream.onerror = () => {
    status.textContent = 'reconnecting…';
    status.className = 'down';
  };
}

/* inspect, details and trace */

let inspecting = 0;

async function showInspect(name: string): Promise<void> {
  const ticket = ++inspecting;
  const title = $('inspect-title');
  const pre = $('inspect');
  title.className = 'hint';
  title.textContent = `Inspecting ${name}…`;
  try {
    const body = await fetchJson<unknown>(`/api/containers/${encodeURIComponent(name)}/json`);
    if (ticket !== inspecting) return;
    title.textContent = `berth inspect ${name}`;
    pre.textContent = JSON.stringify(body, null, 2);
    pre.hidden = false;
  } catch (err) {
    if (ticket !== inspecting) return;
    title.className = 'error';
    title.textContent = `inspect ${name} failed: ${(err as Error).message}`;
    pre.hidden = true;
  }
}

function element(tag: string, text: string, className?: string): HTMLElement {
  const el = document.createElement(tag);
  el.textContent = text;
  if (className) el.className = className;
  return el;
}

let tracing = 0;

async function runTrace(from: string, to: string): Promise<void> {
  const ticket = ++tracing;
  const box = $('trace');
  box.replaceChildren(element('div', `Tracing ${from} → ${to}…`, 'hint'));
  let answer: TraceAnswer;
  try {
    answer = await fetchJson<TraceAnswer>('/api/trace', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ from, to }) });
  } catch (err) {
    if (ticket === tracing) box.replaceChildren(element('div', `trace ${from} → ${to} failed: ${(err as Error).message}`, 'error'));
    return;
  }
  if (ticket !== tracing) return;
  const verdict = element('div', `${from} → ${to}: ${answer.reachable ? 'reachable' : 'NOT reachable'}`, `verdict ${answer.reachable ? 'yes' : 'no'}`);
  const hops = document.createElement('ol');
  hops.className = 'hops';
  for (const h of answer.hops ?? []) hops.append(element('li', `${h.ok ? '✓' : '✗'} ${h.step}${h.detail ? ` — ${h.detail}` : ''}`, h.ok ? 'ok' : 'bad'));
  box.replaceChildren(verdict, hops);
  if (answer.failure) {
    const f = document.createElement('div');
    f.className = 'failure';
    f.append(element('div', `failed at: ${answer.failure.step}`, 'error'), element('div', `why: ${answer.failure.reason}`), element('div', `fix: ${answer.failure.fix}`));
    box.append(f);
  }
}

cy.on('tap', 'node', (ev) => {
  const n = ev.target as cytoscapeModule.NodeSingular;
  $('details').textContent = JSON.stringify(n.data('detail'), null, 2);
  if (n.data('kind') === 'container') void showInspect(n.data('name') as string);
});

cy.on('select', 'node[kind = "container"]', (ev) => {
  const id = (ev.target as cytoscapeModule.NodeSingular).id();
  picked = [...picked.filter((p) => p !== id), id].slice(-2);
  const names = picked.map((p) => cy.getElementById(p).data('name') as string);
  if (names.length === 2) void runTrace(names[0]!, names[1]!);
});

cy.on('unselect', 'node[kind = "container"]', (ev) => {
  const id = (ev.target as cytoscapeModule.NodeSingular).id();
  picked = picked.filter((p) => p !== id);
});

follow();
void refresh();
