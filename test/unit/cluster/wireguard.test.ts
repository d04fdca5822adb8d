/** WireGuard keys and UAPI messages (pure), and the refusal when no implementation is on PATH. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair, parseGet, publicKeyOf, setMessage } from '../../../src/cluster/wireguard-uapi.js';
import { Tunnel, wireguardGoPath } from '../../../src/cluster/tunnel.js';

test('a generated key pair is 32-byte X25519 keys whose public half derives from the private one', () => {
  const a = generateKeyPair();
  assert.equal(Buffer.from(a.privateKey, 'base64').length, 32);
  assert.equal(Buffer.from(a.publicKey, 'base64').length, 32);
  assert.equal(publicKeyOf(a.privateKey), a.publicKey);
  assert.notEqual(generateKeyPair().publicKey, a.publicKey);
});

test('RFC 7748 test vector: the public key of a known private key', () => {
  // Alice's key pair from RFC 7748 §6.1.
  const priv = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex').toString('base64');
  const pub = Buffer.from('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', 'hex').toString('base64');
  assert.equal(publicKeyOf(priv), pub);
});

test('a fresh device gets the key, the port and every peer in one set; a configured one only what differs', () => {
  const me = generateKeyPair();
  const peer = generateKeyPair();
  const gone = generateKeyPair();
  const want = { privateKey: me.privateKey, listenPort: 51820, peers: [{ publicKey: peer.publicKey, endpoint: '192.168.90.12', port: 51820, allowedIps: ['10.254.0.2/32'] }] };
  const hexOf = (k: string) => Buffer.from(k, 'base64').toString('hex');
  const msg = setMessage(want);
  // The same device, as `get=1` reports it after that set: nothing left to change.
  const configured = parseGet(`private_key=${hexOf(me.privateKey)}\nlisten_port=51820\npublic_key=${hexOf(peer.publicKey)}\nendpoint=192.168.90.12:51820\nallowed_ip=10.254.0.2/32\nerrno=0\n\n`);
  assert.equal(setMessage(want, configured), undefined, 'an unchanged peer is not set again (its session survives)');
  configured.peers.set(hexOf(gone.publicKey), { endpoint: '192.168.90.13:51820', allowedIps: ['10.254.0.3/32'] });
  assert.equal(setMessage(want, configured), `set=1\npublic_key=${hexOf(gone.publicKey)}\nremove=true\n\n`, 'a host that left is removed alone');
  assert.equal(
    msg,
    [
      'set=1',
      `private_key=${Buffer.from(me.privateKey, 'base64').toString('hex')}`,
      'listen_port=51820',
      `public_key=${Buffer.from(peer.publicKey, 'base64').toString('hex')}`,
      'endpoint=192.168.90.12:51820',
      'replace_allowed_ips=true',
      'allowed_ip=10.254.0.2/32',
      'persistent_keepalive_interval=25',
    ].join('\n') + '\n\n',
  );
});

test('without wireguard-go on PATH, an encrypted network is refused naming what to install', () => {
  const saved = process.env.PATH;
  try {
    process.env.PATH = '/nonexistent';
    assert.equal(wireguardGoPath(), undefined);
    assert.throws(() => Tunnel.checkAvailable(), /-o encrypted needs WireGuard.*install wireguard-go/);
  } finally {
    process.env.PATH = saved;
  }
  // Positive control: with the real PATH it is found (setup installs wireguard-go).
  assert.ok(wireguardGoPath());
  assert.doesNotThrow(() => Tunnel.checkAvailable());
});
