/**
 * The topology page's HTML and CSS, as a string module: tsc copies no other files into dist.
 * The script (app.ts, compiled to app.js) and cytoscape come from the UI server (assets.ts).
 */
export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>berth — network topology</title>
<style>
  * { box-sizing: border-box; }
  body { margin: 0; font: 13px/1.4 system-ui, sans-serif; color: #1d2733; display: grid; grid-template-columns: 1fr 380px; grid-template-rows: auto 1fr; height: 100vh; }
  header { grid-column: 1 / 3; display: flex; gap: 16px; align-items: center; padding: 6px 12px; background: #1d2733; color: #fff; }
  header h1 { font-size: 15px; margin: 0; }
  #status { padding: 1px 8px; border-radius: 8px; background: #777; }
  #status.live { background: #2e8540; }
  #status.down { background: #b3261e; }
  #summary { opacity: 0.8; }
  #graph { min-height: 0; border-right: 1px solid #ccd; }
  aside { overflow: auto; padding: 10px 12px; }
  aside h2 { font-size: 13px; margin: 14px 0 4px; text-transform: uppercase; letter-spacing: 0.05em; color: #556; }
  pre { background: #f4f6f8; padding: 6px; font-size: 11px; overflow: auto; max-height: 45vh; white-space: pre-wrap; word-break: break-all; }
  .hint { color: #667; }
  .error { color: #b3261e; font-weight: 600; }
  ol.hops { padding-left: 20px; margin: 4px 0; }
  ol.hops li.ok::marker { color: #2e8540; }
  ol.hops li.bad { color: #b3261e; }
  .verdict { font-weight: 600; }
  .verdict.yes { color: #2e8540; }
  .verdict.no { color: #b3261e; }
  .failure { border-left: 3px solid #b3261e; padding-left: 8px; margin-top: 6px; }
  .legend span { display: inline-block; margin-right: 10px; }
  .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 3px; vertical-align: -1px; }
</style>
</head>
<body>
<header>
  <h1>berth topology</h1>
  <span id="status">connecting…</span>
  <span id="summary"></span>
</header>
<div id="graph"></div>
<aside>
  <div class="legend">
    <span><i style="background:#1d2733"></i>host</span>
    <span><i style="background:#3b6ea5"></i>network</span>
    <span><i style="background:#e3a21a"></i>container</span>
    <span><i style="background:#8fb8de"></i>interface</span>
    <span><i style="background:#b3261e"></i>missing / down</span>
  </div>
  <p class="hint">Click a container to inspect it. Ctrl-click (or Shift-click) a second one to trace the path from the first to it.</p>
  <h2>Trace</h2>
  <div id="trace"><span class="hint">Select two containers.</span></div>
  <h2>Inspect</h2>
  <div id="inspect-title" class="hint">No container selected.</div>
  <pre id="inspect" hidden></pre>
  <h2>Selected</h2>
  <pre id="details" class="hint">Click any node.</pre>
</aside>
<script src="/vendor/cytoscape.min.js"></script>
<script src="/vendor/cytoscape-dagre.js"></script>
<script type="module" src="/app.js"></script>
</body>
</html>
`;
