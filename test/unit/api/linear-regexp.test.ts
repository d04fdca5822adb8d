/** The filter matcher: RE2's answers for the syntax filters use, in linear time on any pattern. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PatternError, compileLinear } from '../../../src/api/linear-regexp.js';

const PATTERNS = [
  'web', '^web$', '^web', 'web$', 'w.b', 'we*b', 'we+b', 'we?b', 'w(eb|ob)2?', '(?:ab)+c', 'a{2}', 'a{2,}', '^a{1,3}$', 'a{0}b',
  '[a-c]+', '[^a-c]+$', '^[0-9a-f]{6}', '\\d+', '\\w+\\.\\w+', '\\s', '[-a]', '[a-]$', 'x|', '|x', '()', '(a|)+b', '[]a]', '\\.', 'a.c',
  '{', 'a{', 'a{x}', '^(a+)+$', '(a*)*b', 'ab*?c', 'a+?',
];
/** Where JavaScript spells RE2's meaning differently (RE2 takes a bare `{` and a leading `]` as literals). */
const JS_SPELLING: Record<string, string> = { '[]a]': '[\\]a]', '{': '\\{', 'a{': 'a\\{', 'a{x}': 'a\\{x\\}' };
const INPUTS = ['', 'web', 'web2', 'myweb', 'wb', 'weeb', 'wob', 'wob2', 'ababc', 'aa', 'a', 'aaaa', 'b', 'abc', 'dd', '0a1b2c3d', '12', 'a.b', 'x y', '-', 'a-', ']', 'x', '{', 'a{', 'a{x}', 'aaab', 'ac', 'a\nc'];

describe('linear-time filter patterns', () => {
  test('answers as a backtracking engine does on the common syntax', () => {
    for (const p of PATTERNS) {
      const mine = compileLinear(p);
      const reference = new RegExp(JS_SPELLING[p] ?? p, 'u');
      for (const s of INPUTS) assert.equal(mine.test(s), reference.test(s), `/${p}/ on ${JSON.stringify(s)}`);
    }
  });

  test('refuses what RE2 refuses (the caller then matches the value only exactly)', () => {
    for (const bad of ['[unclosed', '(a', 'a)', '*a', 'a{2000}', '(?=a)', '(?i)a', '\\1', 'a\\', '[z-a]', '(a{100}){1000}', 'a**']) {
      assert.throws(() => compileLinear(bad), PatternError, bad);
    }
  });

  test('catastrophic patterns take linear time: (a+)+$ on 20,000 characters in well under a second', () => {
    const long = `${'a'.repeat(20_000)}!`;
    for (const p of ['^(a+)+$', '^(a|a)*$', '(a*)*b', '^(a|aa)+$', '(.*a){20}$']) {
      const started = performance.now();
      assert.equal(compileLinear(p).test(long), false, p);
      const ms = performance.now() - started;
      assert.ok(ms < 1000, `${p}: ${ms.toFixed(0)} ms`);
    }
    // Positive control on the same input shape: the matcher does find matches in long text.
    assert.equal(compileLinear('(a+)+!$').test(long), true);
  });
});
