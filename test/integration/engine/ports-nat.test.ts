/**
 * Issue 3 with real TCP and UDP through berth: published ports from a LAN peer, from the host
 * (127.0.0.1 and its own address) and from containers (hairpin), outbound masquerade, and the
 * negative cases (127.0.0.1-only ports and host loopback services from a LAN peer and a container
 * that route 127.0.0.1 to the host, with route_localnet=1 on the LAN link; cross-network,
 * icc=false, internal, LAN peer → container address). Every server reports the client address it
 * saw, so the tests check NAT, not just reachability.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUSYBOX, Sandbox, eventually, must, run, type Peer } from '../../helpers/sandbox.js';

/** A web root whose /cgi-bin/ip prints the client address the server saw. */
function webRoot(dir: string, greeting: string): string {
  fs.mkdirSync(path.join(dir, 'cgi-bin'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'index.html'), `${greeting}\n`);
  fs.writeFileSync(path.join(dir, 'cgi-bin', 'ip'), '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s\\n" "$REMOTE_ADDR"\n', { mode: 0o755 });
  return dir;
}

/** A host service bound to 127.0.0.1 only, which nothing outside the host may reach. */
const LOOPBACK_SERVICE_PORT = 8098;

/** The sandbox host's link that carries `address`. */
async function linkWithAddress(sb: Sandbox, address: string): Promise<string> {
  const line = must(await sb.inHost('ip', ['-o', '-4', 'addr', 'show']), 'ip addr').split('\n').find((l) => l.includes(` ${address}/`));
  if (!line) throw new Error(`no link in the sandbox host has ${address}`);
  return line.split(/\s+/)[1]!;
}

/** Makes a namespace send 127.0.0.1 to `via` instead of its own lo, as an attacker would. */
async function routeLoopbackTo(nsPath: string, via: string, src: string): Promise<void> {
  const ip = (...args: string[]) => run('nsenter', [`--net=${nsPath}`, '--', 'ip', ...args]);
  must(await run('nsenter', [`--net=${nsPath}`, '--', 'sysctl', '-qw', 'net.ipv4.conf.all.route_localnet=1', 'net.ipv4.conf.eth0.route_localnet=1']), 'route_localnet');
  must(await ip('rule', 'add', 'pref', '10', 'to', '127.0.0.1', 'lookup', '100'), 'rule');
  must(await ip('rule', 'add', 'pref', '20', 'lookup', 'local'), 'rule local');
  must(await ip('rule', 'del', 'pref', '0'), 'rule del');
  must(await ip('route', 'add', '127.0.0.1/32', 'via', via, 'dev', 'eth0', 'src', src, 'table', '100'), 'route');
}

/**
 * A counter in a table of the test's own, at a priority before berth's raw chain: it proves that
 * packets to 127/8 from outside arrive at the host, so a refusal is berth's doing.
 */
const probe = {
  async install(sb: Sandbox): Promise<void> {
    must(await sb.inHost('nft', ['add table ip berthtest-probe; add chain ip berthtest-probe pre { type filter hook prerouting priority -400; policy accept; }; add rule ip berthtest-probe pre iifname != "lo" ip daddr 127.0.0.0/8 meta l4proto tcp counter']), 'probe table');
  },
  async count(sb: Sandbox): Promise<number> {
    const out = must(await sb.inHost('nft', ['list', 'chain', 'ip', 'berthtest-probe', 'pre']), 'probe counter');
    return Number(/counter packets (\d+)/.exec(out)?.[1] ?? NaN);
  },
};

const curl = async (sb: Sandbox, ns: string, url: string) => {
  const r = await sb.inNs(ns, 'curl', ['-s', '--max-time', '3', url], 10_000);
  // busybox httpd listens dual-stack and reports IPv4 clients as [::ffff:a.b.c.d].
  return { ...r, stdout: r.stdout.replace(/\[::ffff:([\d.]+)\]/g, '$1') };
};

describe('published ports, NAT and isolation', () => {
  let sb: Sandbox;
  let lan: Peer;
  let internet: Peer;
  let webIp: string;

  before(async () => {
    sb = await Sandbox.create('p');
    lan = await sb.addPeer('l', '10.201.0');
    internet = await sb.addPeer('i', '10.202.0');
    // The "internet" host knows no container subnet: only masqueraded traffic can be answered.
    must(await run('ip', ['-n', internet.name, 'route', 'del', 'default']), 'internet: no default route');
    sb.spawnIn(internet.nsPath, BUSYBOX, ['httpd', '-f', '-p', '80', '-h', webRoot(path.join(sb.root, 'inet-www'), 'internet')]);
    await sb.berthOk('network', 'create', 'front');
    await sb.berthOk('network', 'create', 'back');
    const www = webRoot(path.join(sb.root, 'www'), 'hello-from-web');
    await sb.berthOk(
      'run', '-d', '--name', 'web', '--network', 'front', '-p', '8080:80', '-p', '127.0.0.1:8081:80', '-p', '9999:9999/udp', '--',
      '/bin/sh', '-c', `${BUSYBOX} httpd -p 80 -h ${www}; exec socat UDP4-RECVFROM:9999,fork EXEC:'/bin/echo udp-ok'`,
    );
    await sb.berthOk('run', '-d', '--name', 'peer', '--network', 'front', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'outsider', '--network', 'back', '--', BUSYBOX, 'sleep', '3600');
    webIp = (await sb.inspect('web')).NetworkSettings.Networks.front!.IPAddress;
    assert.ok(await eventually(async () => (await curl(sb, await sb.netnsOf('peer'), `http://${webIp}/`)).stdout.includes('hello'), 5000), 'web is serving');
  });
  after(async () => {
    await sb?.destroy();
  });

  test('a LAN peer reaches a published port at the host address, and the container sees its real address', async () => {
    assert.equal((await curl(sb, lan.nsPath, `http://${lan.hostAddress}:8080/`)).stdout.trim(), 'hello-from-web');
    assert.equal((await curl(sb, lan.nsPath, `http://${lan.hostAddress}:8080/cgi-bin/ip`)).stdout.trim(), lan.address);
  });

  test('the host reaches the published port at 127.0.0.1 and at its own addresses', async () => {
    for (const url of [`http://127.0.0.1:8080/`, `http://127.0.0.1:8081/`, `http://${lan.hostAddress}:8080/`, `http://${internet.hostAddress}:8080/`]) {
      const r = await sb.inHost('curl', ['-s', '--max-time', '3', url]);
      assert.equal(r.stdout.trim(), 'hello-from-web', url);
    }
  });

  test('containers reach a published port at the host address (hairpin), from the same and another network', async () => {
    assert.equal((await curl(sb, await sb.netnsOf('peer'), `http://${lan.hostAddress}:8080/`)).stdout.trim(), 'hello-from-web');
    assert.equal((await curl(sb, await sb.netnsOf('web'), `http://${lan.hostAddress}:8080/`)).stdout.trim(), 'hello-from-web', 'to itself');
    assert.equal((await curl(sb, await sb.netnsOf('outsider'), `http://${lan.hostAddress}:8080/`)).stdout.trim(), 'hello-from-web');
  });

  test('UDP ports are published too', async () => {
    // UDP is lossy by design: a client retries, and so does this one.
    const answered = await eventually(async () => {
      const r = await sb.inNs(lan.nsPath, 'sh', ['-c', `echo ping | socat -T2 - UDP4:${lan.hostAddress}:9999`]);
      return r.stdout.trim() === 'udp-ok';
    }, 8000, 200);
    assert.ok(answered, 'the UDP server in the container answered through the published port');
  });

  test('containers reach the internet through masquerade: the far end sees the host address', async () => {
    const r = await curl(sb, await sb.netnsOf('peer'), `http://${internet.address}/cgi-bin/ip`);
    assert.equal(r.stdout.trim(), internet.hostAddress);
  });

  test('a 127.0.0.1-only port and host loopback services are never reachable from a LAN peer or a container, even when they route 127.0.0.1 to the host', async () => {
    assert.notEqual((await curl(sb, lan.nsPath, `http://${lan.hostAddress}:8081/`)).code, 0, 'not at the host address');
    // A host service bound to loopback only, and a counter that sees packets before berth's raw chain.
    sb.spawnIn(sb.hostNs, BUSYBOX, ['httpd', '-f', '-p', `127.0.0.1:${LOOPBACK_SERVICE_PORT}`, '-h', webRoot(path.join(sb.root, 'host-www'), 'host-only')]);
    assert.ok(await eventually(async () => (await sb.inHost('curl', ['-s', '--max-time', '2', `http://127.0.0.1:${LOOPBACK_SERVICE_PORT}/`])).stdout.trim() === 'host-only', 3000), 'the host reaches its loopback service');
    const lanLink = await linkWithAddress(sb, lan.hostAddress);
    // Some hosts set route_localnet=1 on every interface (kube-proxy does): then the kernel no longer
    // drops 127/8 arriving from the LAN as martian, and only berth's raw-prerouting guard is left.
    must(await sb.inHost('sysctl', ['-qw', `net.ipv4.conf.${lanLink}.route_localnet=1`]), 'route_localnet on the LAN link');
    const peerIp = (await sb.inspect('peer')).NetworkSettings.Networks.front!.IPAddress;
    const frontGw = JSON.parse(await sb.berthOk('network', 'inspect', 'front'))[0].IPAM.Config[0].Gateway as string;
    const peerNs = await sb.netnsOf('peer');
    await routeLoopbackTo(lan.nsPath, lan.hostAddress, lan.address);
    await routeLoopbackTo(peerNs, frontGw, peerIp);
    await probe.install(sb);

    // Docker 20.10 answered the first of these with HTTP 200: a LAN peer sending to 127.0.0.1 via the host.
    for (const [from, who] of [[lan.nsPath, 'LAN peer'], [peerNs, 'container']] as const) {
      for (const p of [8081, 8080, LOOPBACK_SERVICE_PORT]) {
        const before = await probe.count(sb);
        const r = await sb.inNs(from, 'curl', ['-s', '--max-time', '2', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${p}/`]);
        assert.notEqual(r.stdout.trim(), '200', `${who} -> 127.0.0.1:${p} must stay host-only`);
        // Positive control: the packets did reach the host through this path; only berth's rules stopped them.
        assert.ok((await probe.count(sb)) > before, `${who}'s packets to 127.0.0.1:${p} reached the host`);
      }
    }
  });

  test('a LAN peer cannot reach container addresses directly, even with a route to the subnet', async () => {
    must(await run('ip', ['-n', lan.name, 'route', 'add', '172.18.0.0/16', 'via', lan.hostAddress]), 'route to the container subnet');
    assert.notEqual((await curl(sb, lan.nsPath, `http://${webIp}/`)).code, 0);
    // Control: the same peer, through the same forward path into the bridge, after DNAT.
    assert.equal((await curl(sb, lan.nsPath, `http://${lan.hostAddress}:8080/`)).stdout.trim(), 'hello-from-web');
  });

  test('containers on two different networks cannot reach each other', async () => {
    const r = await sb.inNs(await sb.netnsOf('outsider'), BUSYBOX, ['ping', '-c', '1', '-W', '1', webIp]);
    assert.notEqual(r.code, 0);
    assert.notEqual((await curl(sb, await sb.netnsOf('outsider'), `http://${webIp}/`)).code, 0);
    // Control: a container of web's own network reaches it by the same address.
    assert.equal((await sb.inNs(await sb.netnsOf('peer'), BUSYBOX, ['ping', '-c', '1', '-W', '1', webIp])).code, 0);
    assert.equal((await curl(sb, await sb.netnsOf('peer'), `http://${webIp}/`)).stdout.trim(), 'hello-from-web');
  });

  test('icc=false blocks container-to-container traffic in a network; its published ports still work', async () => {
    await sb.berthOk('network', 'create', '-o', 'com.docker.network.bridge.enable_icc=false', 'noicc');
    const www = webRoot(path.join(sb.root, 'www-noicc'), 'noicc-web');
    await sb.berthOk('run', '-d', '--name', 'iweb', '--network', 'noicc', '-p', '8090:80', '--', BUSYBOX, 'httpd', '-f', '-p', '80', '-h', www);
    await sb.berthOk('run', '-d', '--name', 'icli', '--network', 'noicc', '--', BUSYBOX, 'sleep', '3600');
    const iwebIp = (await sb.inspect('iweb')).NetworkSettings.Networks.noicc!.IPAddress;
    const icli = await sb.netnsOf('icli');
    assert.notEqual((await curl(sb, icli, `http://${iwebIp}/`)).code, 0, 'container to container is blocked');
    const gw = JSON.parse(await sb.berthOk('network', 'inspect', 'noicc'))[0].IPAM.Config[0].Gateway;
    assert.equal((await sb.inNs(icli, BUSYBOX, ['ping', '-c', '1', '-W', '2', gw])).code, 0, 'the gateway is reachable');
    assert.ok(await eventually(async () => (await curl(sb, lan.nsPath, `http://${lan.hostAddress}:8090/`)).stdout.trim() === 'noicc-web', 3000), 'published port works from the LAN');
  });

  test('internal networks cannot leave the host, even with a route out; a non-internal network reaches the same peer the same way', async () => {
    // Both networks unmasqueraded, and the internet peer routes both subnets back: a packet that
    // leaves gets its answer, so only the firewall can make the difference.
    await sb.berthOk('network', 'create', '--internal', '--subnet', '10.67.0.0/24', 'vault');
    await sb.berthOk('network', 'create', '--subnet', '10.68.0.0/24', '-o', 'com.docker.network.bridge.enable_ip_masquerade=false', 'open');
    await sb.berthOk('run', '-d', '--name', 'locked', '--network', 'vault', '--', BUSYBOX, 'sleep', '3600');
    await sb.berthOk('run', '-d', '--name', 'free', '--network', 'open', '--', BUSYBOX, 'sleep', '3600');
    for (const subnet of ['10.67.0.0/24', '10.68.0.0/24']) must(await run('ip', ['-n', internet.name, 'route', 'add', subnet, 'via', internet.hostAddress]), 'route back');
    const locked = await sb.netnsOf('locked');
    // Whether or not the network gives one, a process in the container can set a default route
    // itself: the host must still refuse to forward.
    must(await sb.inNs(locked, 'ip', ['route', 'replace', 'default', 'via', '10.67.0.1']), 'a default route inside the container');
    assert.equal((await curl(sb, await sb.netnsOf('free'), `http://${internet.address}/cgi-bin/ip`)).stdout.trim(), '10.68.0.2', 'control: the open network reaches the peer');
    assert.notEqual((await curl(sb, locked, `http://${internet.address}/`)).code, 0, 'the internal network does not');
    const ping = await sb.inNs(locked, BUSYBOX, ['ping', '-c', '1', '-W', '1', internet.address]);
    assert.notEqual(ping.code, 0, 'not even ICMP');
  });

  test('enable_ip_masquerade=false: the far end sees the container address', async () => {
    await sb.berthOk('network', 'create', '--subnet', '10.66.0.0/24', '-o', 'com.docker.network.bridge.enable_ip_masquerade=false', 'plain');
    await sb.berthOk('run', '-d', '--name', 'unmasked', '--network', 'plain', '--', BUSYBOX, 'sleep', '3600');
    must(await run('ip', ['-n', internet.name, 'route', 'add', '10.66.0.0/24', 'via', internet.hostAddress]), 'route back');
    const r = await curl(sb, await sb.netnsOf('unmasked'), `http://${internet.address}/cgi-bin/ip`);
    assert.equal(r.stdout.trim(), '10.66.0.2');
  });

  test('publishing a port already published is refused with the holder named; so is a port a host process holds', async () => {
    const dup = await sb.berth('run', '-d', '--name', 'dup', '--network', 'front', '-p', '8080:80', '--', BUSYBOX, 'sleep', '3600');
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /8080.*already allocated to container web/);
    assert.equal((await sb.berth('inspect', 'dup')).code, 1, 'the refused container is removed');
    const holder = sb.spawnIn(sb.hostNs, BUSYBOX, ['nc', '-ll', '-p', '8095', '-e', '/bin/true']);
    assert.ok(await eventually(async () => (await sb.inHost('ss', ['-ltn'])).stdout.includes(':8095'), 3000));
    const busy = await sb.berth('run', '-d', '--name', 'busy', '--network', 'front', '-p', '8095:80', '--', BUSYBOX, 'sleep', '3600');
    assert.notEqual(busy.code, 0);
    assert.match(busy.stderr, /8095.*host process is already listening/);
    holder.kill('SIGKILL');
  });

  test('malformed -p specs are refused before anything is made', async () => {
    for (const [spec, message] of [
      ['99999:80', /99999/],
      ['0:80', /port/],
      ['8000-8009:80-88', /10 ports.*9/],
      ['8080:80/sctpx', /unknown protocol "sctpx"/],
      ['notanip:8080:80', /notanip/],
      ['10.1.2.3:8080:80', /10\.1\.2\.3.*not an address of this host/],
    ] as const) {
      const r = await sb.berth('run', '-d', '--network', 'front', '-p', spec, '--', BUSYBOX, 'sleep', '1');
      assert.notEqual(r.code, 0, spec);
      assert.match(r.stderr, message, spec);
    }
    assert.equal((await sb.berthOk('ps', '-a')).includes('sleep 1'), false, 'no container left behind');
  });

  test('-P publishes --expose\'d ports on ephemeral host ports; berth port lists them', async () => {
    await sb.berthOk('run', '-d', '--name', 'eph', '--network', 'front', '--expose', '80', '-P', '-p', '7070', '--', BUSYBOX, 'sleep', '3600');
    const ports = (await sb.berthOk('port', 'eph')).trim().split('\n').sort();
    assert.equal(ports.length, 2);
    for (const line of ports) assert.match(line, /^(80|7070)\/tcp -> 0\.0\.0\.0:(3[2-9]\d{3}|[4-5]\d{4}|60\d{3})$/);
    const inspect = await sb.inspect('eph');
    assert.ok(inspect.NetworkSettings.Ports['80/tcp']?.[0]?.HostPort, 'NetworkSettings.Ports as Docker shows them');
  });

  test('removing a container removes exactly its elements; a daemon restart keeps rules and live connections', async () => {
    const elements = async () => (await sb.inHost('nft', ['list', 'map', 'ip', 'berth', 'dnat_any'])).stdout;
    await sb.berthOk('run', '-d', '--name', 'gone', '--network', 'front', '-p', '8097:80', '--', BUSYBOX, 'sleep', '3600');
    assert.match(await elements(), /8097/);
    await sb.berthOk('rm', '-f', 'gone');
    assert.doesNotMatch(await elements(), /8097/);
    assert.match(await elements(), /8080/, "other containers' elements stay");

    // A TCP connection through the published port survives a daemon restart.
    await sb.berthOk('run', '-d', '--name', 'echo', '--network', 'front', '-p', '8096:7000', '--', BUSYBOX, 'nc', '-ll', '-p', '7000', '-e', '/bin/cat');
    const client = sb.inNs(lan.nsPath, process.execPath, ['-e', echoClientScript, lan.hostAddress, '8096'], 20_000);
    await new Promise((r) => setTimeout(r, 1500));
    await sb.stopDaemon('SIGTERM');
    await sb.startDaemon();
    const out = await client;
    assert.equal(out.stdout.trim(), 'one two', out.stderr);
    assert.equal((await curl(sb, lan.nsPath, `http://${lan.hostAddress}:8080/`)).stdout.trim(), 'hello-from-web');
  });
});

/** Sends "one", waits 4 s (the daemon restarts meanwhile), sends "two"; prints what came back. */
const echoClientScript = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
let got = '';
const s = net.connect(Number(port), host, () => {
  s.write('one ');
  setTimeout(() => s.write('two'), 4000);
  setTimeout(() => { console.log(got); process.exit(0); }, 5500);
});
s.on('data', (d) => { got += d; });
s.on('error', (e) => { console.log('error ' + e.message + ' after ' + JSON.stringify(got)); process.exit(0); });
`;
