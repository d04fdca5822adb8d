/**
 * Issue 10 item 9: when a container stops, the conntrack entries that name its address are
 * deleted. Without that, a LAN client that keeps sending UDP to a published port keeps being
 * DNAT'd to the old address (every packet refreshes the entry) and reaches whichever container
 * gets that address next, one that published nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Sandbox, eventually, type Peer } from '../../helpers/sandbox.js';

/**
 * Sends a numbered datagram every 100 ms from one source port, for at most `seconds`, or until
 * `stopFile` exists (the test is done: a loaded machine must not run the flow out before the end).
 */
const senderScript = `
const [host, port, seconds, stopFile] = process.argv.slice(1);
const sock = require('node:dgram').createSocket('udp4');
let n = 0;
let stopped = false;
const stop = () => { if (stopped) return; stopped = true; clearInterval(timer); sock.close(); };
let timer;
sock.bind(40123, () => {
  timer = setInterval(() => (require('node:fs').existsSync(stopFile) ? stop() : sock.send('ping ' + n++ + '\\n', Number(port), host)), 100);
  setTimeout(stop, Number(seconds) * 1000);
});
`;

const lines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0);

describe('conntrack clean-up', () => {
  let sb: Sandbox;
  let lan: Peer;
  before(async () => {
    sb = await Sandbox.create('ct');
    lan = await sb.addPeer('l', '10.217.0');
    await sb.berthOk('network', 'create', '--subnet', '10.180.0.0/24', 'ctnet');
  });
  after(async () => {
    await sb?.destroy();
  });

  const receiver = (name: string, file: string, publish: string[]) =>
    sb.berthOk('run', '-d', '--name', name, '--network', 'ctnet', ...publish, '--', 'socat', '-u', 'UDP4-RECV:9000', `OPEN:${file},creat,append`);

  test("a stopped container's UDP flow is not DNAT'd to the next container that takes its address", async () => {
    const first = path.join(sb.root, 'first.log');
    const second = path.join(sb.root, 'second.log');
    await receiver('first', first, ['-p', '8700:9000/udp']);
    const ip = (await sb.inspect('first')).NetworkSettings.Networks.ctnet!.IPAddress;
    const stopFile = path.join(sb.root, 'sender.stop');
    const client = sb.inNs(lan.nsPath, process.execPath, ['-e', senderScript, lan.hostAddress, '8700', '60', stopFile], 70_000);
    // Positive control through the same path: the flow reaches the publishing container.
    assert.ok(await eventually(() => lines(first) >= 5, 4000), 'the first container receives the flow');
    const conntrack = await sb.inHost('cat', ['/proc/net/nf_conntrack']);
    const tracked = conntrack.code === 0 ? conntrack.stdout.includes(`src=${ip}`) : true;
    assert.ok(tracked, 'the flow is tracked, DNAT\'d to the first container');
    await sb.berthOk('rm', '-f', 'first');
    // The next container on the network takes the freed address and listens on the same port, publishing nothing.
    await receiver('second', second, []);
    assert.equal((await sb.inspect('second')).NetworkSettings.Networks.ctnet!.IPAddress, ip, 'the address is reused');
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(lines(second), 0, 'the old flow must not reach the new container');
    // Publishing the port again brings the same flow to the new owner (so silence above was not a dead client).
    await sb.berthOk('rm', '-f', 'second');
    const third = path.join(sb.root, 'third.log');
    await receiver('third', third, ['-p', '8700:9000/udp']);
    try {
      assert.ok(await eventually(() => lines(third) >= 3, 4000), 'a container that publishes the port gets the flow');
    } finally {
      fs.writeFileSync(stopFile, '');
      await client;
    }
  });
});
