import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setsToRedeclare } from '../../../src/firewall/legacy-sets.js';

const LISTING = `table ip other {
	set bridges {
		type ifname
	}
}
table ip berth {
	set bridges {
		type ifname
		flags interval
		elements = { "berth0" }
	}
	set same_bridge {
		type ifname . ifname
		elements = { "berth0" . "berth0" }
	}
	map dns_redirect {
		type ifname . ipv4_addr : inet_service
		flags interval
	}
	map dnat_any {
		type inet_proto . inet_service : ipv4_addr . inet_service
	}
}
table ip6 berth {
	set bridges {
		type ifname . ifname
		flags interval
	}
}
table bridge berth {
	set icc_off_ports {
		type ifname
	}
}
`;

const WANTED = [
  { family: 'ip', name: 'bridges', type: 'ifname . ifname', interval: true },
  { family: 'ip', name: 'same_bridge', type: 'ifname . ifname', interval: true },
  { family: 'ip', name: 'dns_redirect', type: 'ifname . ipv4_addr', interval: true },
  { family: 'ip', name: 'dnat_any', type: 'inet_proto . inet_service', interval: false },
  { family: 'ip6', name: 'bridges', type: 'ifname . ifname', interval: true },
  { family: 'bridge', name: 'icc_off_ports', type: 'ifname', interval: false },
];

test("sets of berth's ip and ip6 tables declared with another type or without intervals are named; other tables, families and matching sets are not", () => {
  assert.deepEqual(setsToRedeclare(LISTING, WANTED), ['ip bridges', 'ip same_bridge']);
});

test('a set not listed yet (a first start, or one newer than the tables) is not redeclared', () => {
  assert.deepEqual(setsToRedeclare('', WANTED), []);
  assert.deepEqual(setsToRedeclare(LISTING, [{ family: 'ip', name: 'routed_peers', type: 'ipv4_addr . ipv4_addr', interval: true }]), []);
});
