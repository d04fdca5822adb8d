import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setsLackingIntervals } from '../../../src/firewall/legacy-sets.js';

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
table bridge berth {
	set icc_off_ports {
		type ifname
	}
}
`;

test('only sets of ip berth without intervals are named; other tables and families are ignored', () => {
  assert.deepEqual(setsLackingIntervals(LISTING, ['bridges', 'same_bridge', 'dns_redirect', 'icc_off_ports']), ['same_bridge']);
});

test('nothing listed (a first start): nothing to recreate', () => {
  assert.deepEqual(setsLackingIntervals('', ['bridges']), []);
});
