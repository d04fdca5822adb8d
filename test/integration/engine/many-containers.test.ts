/**
 * Issue 10 item 3: published ports keep answering with ~1,000 containers on one bridge.
 *
 * A container that ARPs for its gateway broadcasts the request; the bridge floods it by queueing
 * one copy per port on the CPU's receive backlog (net.core.netdev_max_backlog, 1,000 by default,
 * a global sysctl a test must not change). With more ports than that the backlog is full when the
 * gateway's reply arrives behind the copies, and the reply is dropped: the container never learns
 * the gateway's MAC, so it cannot answer a LAN peer on a published port, nor the host. Reproducing
 * it therefore needs as many ports as the backlog holds, about 1,000 containers (~30 s here); the
 * crowd is network-only containers made through the API (the CLI's start-up would take minutes).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApiClient } from '../../../src/api/client.js';
import { BUSYBOX, Sandbox, eventually, must, type Peer } from '../../helpers/sandbox.js';

const BRIDGE_PORT_LIMIT = 1024;
const backlog = Number(fs.readFileSync('/proc/sys/net/core/netdev_max_backlog', 'utf8').trim());
// Past the backlog by a few ports, within the bridge's limit (the two servers and the client need ports too).
const CROWD = backlog + 8;
const skip = CROWD + 3 > BRIDGE_PORT_LIMIT ? `net.core.netdev_max_backlog is ${backlog}: a bridge (at most ${BRIDGE_PORT_LIMIT} ports) cannot outgrow it here` : false;

const SUBNET = '10.97.0.0/16';
const GATEWAY = '10.97.0.1';

describe(`published ports with ${CROWD} containers on one bridge`, { skip }, () => {
  let sb: Sandbox;
  let api: ApiClient;
  let lan: Peer;
  let www: string;

  /** HTTP status (000 when nothing answered) of a GET from `ns`, bounded to 3 s. */
  const status = async (ns: string, url: string) => (await sb.inNs(ns, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', url], 10_000)).stdout.trim();

  const server = async (name: string, hostPort: number) => {
    await sb.berthOk('run', '-d', '--name', name, '--network', 'crowd', '-p', `${hostPort}:80`, '--', BUSYBOX, 'httpd', '-f', '-p', '80', '-h', www);
    const netns = await sb.netnsOf(name);
    assert.ok(await eventually(async () => (await status(netns, 'http://127.0.0.1/')) === '200', 5000), `${name} serves inside its namespace`);
    return { netns, ip: (await sb.inspect(name)).NetworkSettings.Networks.crowd!.IPAddress };
  };

  before(async () => {
    sb = await Sandbox.create('m');
    api = new ApiClient(`unix://${sb.socket}`);
    lan = await sb.addPeer('l', '10.203.0');
    www = path.join(sb.root, 'www');
    fs.mkdirSync(www);
    fs.writeFileSync(path.join(www, 'index.html'), 'hello\n');
    await sb.berthOk('network', 'create', '--subnet', SUBNET, 'crowd');
  });
  after(async () => {
    api?.close();
    // Killing the daemon first spares a `berth rm -f` of every container: destroy() removes the
    // namespaces, mounts and processes anyway.
    await sb?.stopDaemon('SIGKILL');
    await sb?.destroy();
  });

  test('with a few containers, a LAN peer reaches a published port (positive control)', async () => {
    await server('oldest', 18080);
    assert.equal(await status(lan.nsPath, `http://${lan.hostAddress}:18080/`), '200');
  });

  test(`${CROWD} more containers with a published port each start`, async () => {
    // Network-only containers have no process: the placeholder's PID keeps the reaper off them.
    const placeholder = sb.spawnIn(sb.hostNs, BUSYBOX, ['sleep', '600']);
    for (let i = 1; i <= CROWD; i++) {
      const { Id } = await api.request<{ Id: string }>('POST', '/containers/create?start=1&detach=0', {
        cmd: [BUSYBOX, 'sleep', '600'],
        networkMode: 'crowd',
        ports: [{ protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 20000 + i, containerPort: 80 }],
      });
      await api.request('POST', `/containers/${Id}/pid`, { pid: placeholder.pid });
    }
    const ports = (await sb.inHost('sh', ['-c', 'bridge link show | wc -l'])).stdout.trim();
    assert.ok(Number(ports) > backlog, `the bridge has ${ports} ports, more than the backlog of ${backlog}`);
  });

  test('a LAN peer reaches the newest container’s published port', async () => {
    const newest = await server('newest', 18081);
    assert.equal(await status(lan.nsPath, `http://${lan.hostAddress}:18081/`), '200', 'published port of the newest container');
    assert.equal(await status(sb.hostNs, `http://${newest.ip}/`), '200', 'the host reaches it at its own address');
  });

  test('a LAN peer still reaches the oldest container’s published port', async () => {
    assert.equal(await status(lan.nsPath, `http://${lan.hostAddress}:18080/`), '200');
  });

  test('a container knows its gateway permanently, so it never broadcasts for it', async () => {
    const entry = (await sb.inNs(await sb.netnsOf('newest'), 'ip', ['neigh', 'show', GATEWAY])).stdout.trim();
    const [bridge] = JSON.parse(must(await sb.inHost('ip', ['-j', 'addr', 'show', 'to', GATEWAY]), 'find the bridge')) as { ifname: string }[];
    const [link] = JSON.parse(must(await sb.inHost('ip', ['-j', 'link', 'show', 'dev', bridge!.ifname]), 'read the bridge')) as { address: string }[];
    const bridgeMac = link!.address;
    assert.match(entry, new RegExp(`^${GATEWAY.replace(/\./g, '\\.')} dev eth0 lladdr ${bridgeMac} PERMANENT$`));
  });
});
