/**
 * Issue 15, metrics, with real traffic: a daemon serving /metrics on its socket and (with
 * --metrics-addr) on TCP in the sandbox namespace; a scrape, real work (a network created,
 * containers pinging each other, a LAN peer fetching through a published port, a dig to the
 * network's resolver), a second scrape, and the series that must have moved did, while a network
 * and a port that saw nothing stayed put (the negative controls, beside positives on the same path).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BERTH, BUSYBOX, Sandbox, eventually, run, type Peer } from '../../helpers/sandbox.js';
import { sample } from '../../helpers/metrics.js';

const METRICS_ADDR = '127.0.0.1:9323';

/** curl -D - output: the response headers, then the body. */
function splitHeaders(out: string): { headers: string; text: string } {
  const end = out.indexOf('\r\n\r\n');
  return { headers: out.slice(0, end), text: out.slice(end + 4) };
}

describe('Prometheus metrics', () => {
  let sb: Sandbox;
  let lan: Peer;
  let gw: string;
  let webIp: string;

  /** Scrapes over TCP from inside the sandbox namespace, where the daemon's loopback is. */
  const scrape = async (): Promise<{ text: string; headers: string }> => {
    const r = await sb.inHost('curl', ['-s', '--max-time', '5', '-D', '-', `http://${METRICS_ADDR}/metrics`]);
    assert.equal(r.code, 0, `scrape failed: ${r.stderr}`);
    return splitHeaders(r.stdout);
  };

  before(async () => {
    sb = await Sandbox.create('m', { startDaemon: false });
    lan = await sb.addPeer('l', '10.204.0');
    await sb.startDaemon(['--metrics-addr', METRICS_ADDR]);
    await sb.berthOk('network', 'create', 'busy');
    await sb.berthOk('network', 'create', 'quiet');
    const www = path.join(sb.root, 'www');
    fs.mkdirSync(www, { recursive: true });
    fs.writeFileSync(path.join(www, 'index.html'), 'hello-metrics\n');
    await sb.berthOk('run', '-d', '--name', 'web', '--network', 'busy', '-p', '8080:80', '--', BUSYBOX, 'httpd', '-f', '-p', '80', '-h', www);
    // Published like web's port, but nobody ever connects to it: the port's negative control.
    await sb.berthOk('run', '-d', '--name', 'idle', '--network', 'busy', '-p', '8090:80', '--', BUSYBOX, 'httpd', '-f', '-p', '80', '-h', www);
    await sb.berthOk('run', '-d', '--name', 'pinger', '--network', 'busy', '--', BUSYBOX, 'sleep', '3600');
    gw = JSON.parse(await sb.berthOk('network', 'inspect', 'busy'))[0].IPAM.Config[0].Gateway;
    webIp = (await sb.inspect('web')).NetworkSettings.Networks.busy!.IPAddress;
    assert.ok(await eventually(async () => (await sb.inNs(lan.nsPath, 'curl', ['-s', '--max-time', '2', `http://${lan.hostAddress}:8080/`])).stdout.includes('hello'), 5000), 'web serves through its published port');
  });
  after(async () => {
    await sb?.destroy();
  });

  test('real work moves the right series, and a network and a port that saw nothing stay put', async () => {
    const before = (await scrape()).text;
    const num = (text: string, name: string, labels: Record<string, string>) => sample(text, name, labels) ?? 0;
    const busyFrom = { network: 'busy', family: 'ipv4', direction: 'from_containers' };
    const busyTo = { network: 'busy', family: 'ipv4', direction: 'to_containers' };
    const quietFrom = { network: 'quiet', family: 'ipv4', direction: 'from_containers' };
    const quietTo = { network: 'quiet', family: 'ipv4', direction: 'to_containers' };
    const webPort = { container: 'web', host_port: '8080', protocol: 'tcp', host_ip: '0.0.0.0' };
    const idlePort = { container: 'idle', host_port: '8090', protocol: 'tcp', host_ip: '0.0.0.0' };
    // Every counted element has a series from the start, at zero if nothing passed.
    for (const labels of [quietFrom, quietTo]) assert.notEqual(sample(before, 'berth_network_packets_total', labels), undefined, `series ${JSON.stringify(labels)} exists`);
    assert.equal(sample(before, 'berth_published_port_packets_total', idlePort), 0);

    await sb.berthOk('network', 'create', 'fresh');
    const ping = await sb.berth('exec', 'pinger', '--', BUSYBOX, 'ping', '-c', '3', '-W', '2', webIp);
    assert.equal(ping.code, 0, `containers ping each other: ${ping.stderr}`);
    const fetched = await sb.inNs(lan.nsPath, 'curl', ['-s', '--max-time', '3', `http://${lan.hostAddress}:8080/`]);
    assert.equal(fetched.stdout.trim(), 'hello-metrics', 'the LAN peer fetched through the published port');
    const dig = await sb.inNs(await sb.netnsOf('pinger'), 'dig', [`@${gw}`, '+tries=1', '+time=3', '+short', 'web']);
    assert.equal(dig.stdout.trim(), webIp, 'the resolver answered from its records');

    const after = (await scrape()).text;
    const grew = (name: string, labels: Record<string, string>) => num(after, name, labels) - num(before, name, labels);
    assert.equal(grew('berth_operations_total', { kind: 'network create', outcome: 'ok' }), 1, 'one network create');
    assert.ok(num(after, 'berth_operation_duration_seconds_count', { kind: 'network create', outcome: 'ok' }) >= 1);
    assert.ok(grew('berth_network_packets_total', busyFrom) >= 4, `busy's packets from containers grew: ${grew('berth_network_packets_total', busyFrom)}`);
    assert.ok(grew('berth_network_bytes_total', busyFrom) > 0);
    assert.ok(grew('berth_network_packets_total', busyTo) >= 4, "busy's packets to containers grew");
    assert.ok(grew('berth_published_port_packets_total', webPort) >= 4, `web's port saw the HTTP exchange both ways: ${grew('berth_published_port_packets_total', webPort)}`);
    assert.ok(grew('berth_published_port_bytes_total', webPort) > 0);
    assert.ok(grew('berth_dns_queries_total', { outcome: 'local' }) >= 1, 'a query answered from records');
    // The negative controls, on the same sets and rules as the positives above.
    assert.equal(grew('berth_network_packets_total', quietFrom), 0, 'quiet saw no packets from containers');
    assert.equal(grew('berth_network_packets_total', quietTo), 0, 'quiet saw no packets to containers');
    assert.equal(grew('berth_published_port_packets_total', idlePort), 0, "idle's port saw nothing");
    assert.equal(grew('berth_dns_queries_total', { outcome: 'failed' }), 0);
    // Default process metrics are there too.
    assert.ok(num(after, 'process_cpu_seconds_total', {}) > 0);
  });

  test('a firewall rebuild (berth system reconcile) keeps the counters', async () => {
    const webPort = { container: 'web', host_port: '8080', protocol: 'tcp' };
    const before = (await scrape()).text;
    await sb.berthOk('system', 'reconcile');
    const after = (await scrape()).text;
    const was = sample(before, 'berth_published_port_packets_total', webPort) ?? 0;
    assert.ok(was > 0, 'the control: the port has counted something');
    assert.ok((sample(after, 'berth_published_port_packets_total', webPort) ?? 0) >= was);
    assert.ok((sample(after, 'berth_reconcile_runs_total') ?? 0) >= 1);
    // Read straight from the kernel: the rebuild wrote the element back with its counts.
    const listing = await sb.inHost('nft', ['list', 'set', 'ip', 'berth', 'port_traffic_any']);
    const kernel = Number(/tcp \. 8080 counter packets (\d+)/.exec(listing.stdout)?.[1] ?? 0);
    assert.ok(kernel >= was, `kernel counter ${kernel} kept across the rebuild (was ${was})`);
  });

  test('GET /metrics on the API socket, in the Prometheus text format', async () => {
    const r = await run('curl', ['-s', '--max-time', '5', '-D', '-', '--unix-socket', sb.socket, 'http://berth/metrics']);
    assert.equal(r.code, 0, r.stderr);
    const { headers, text } = splitHeaders(r.stdout);
    assert.match(headers, /^HTTP\/1\.1 200/m);
    assert.match(headers, /^content-type: text\/plain; version=0\.0\.4; charset=utf-8/im);
    assert.match(text, /^# TYPE berth_operations_total counter$/m);
    assert.match(text, /^berth_network_packets_total\{network="busy",family="ipv4",direction="from_containers"\} \d+$/m);
    const tcp = await scrape();
    assert.match(tcp.headers, /^content-type: text\/plain; version=0\.0\.4; charset=utf-8/im);
  });

  test('the TCP listener serves /metrics only', async () => {
    const r = await sb.inHost('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `http://${METRICS_ADDR}/networks`]);
    assert.equal(r.stdout, '404', 'the API is not exposed on TCP');
  });

  test('a malformed --metrics-addr is refused before the daemon starts anything', async () => {
    const root = fs.mkdtempSync(path.join(sb.root, 'bad-'));
    for (const bad of ['localhost:9323', '127.0.0.1', '127.0.0.1:70000', '::1:9323']) {
      const r = await run('nsenter', [`--net=${sb.hostNs}`, '--', process.execPath, BERTH, 'daemon', '--root', path.join(root, 'state'), '--host', `unix://${root}/s.sock`, '--metrics-addr', bad], { timeoutMs: 15_000 });
      assert.equal(r.code, 1, `${bad}: exit 1`);
      assert.match(r.stderr, /--metrics-addr .* is not IP:PORT: .*for example 127\.0\.0\.1:9323/, bad);
      assert.ok(!fs.existsSync(path.join(root, 's.sock')), 'no socket was made');
    }
  });
});
