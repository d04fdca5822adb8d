/**
 * A regular-expression matcher that runs in linear time, for the values of Docker's `filters`.
 *
 * Docker matches `name` and `id` filters with Go's `regexp.MatchString`, which is RE2: no
 * backtracking, so no pattern can make it slow. JavaScript's RegExp backtracks, and a client
 * could block berth's event loop (which also serves DNS) with `(a+)+$`. So berth compiles the
 * pattern itself into a Thompson NFA and runs it as a Pike VM: every input character advances all
 * live states at once, O(pattern × input) in the worst case.
 *
 * The syntax is the part of RE2 that filter values use: literals, `.`, classes (`[a-z]`, `[^…]`,
 * `\d \w \s` and their negations), `^`, `$`, groups (`(…)`, `(?:…)`), `|`, and the quantifiers
 * `* + ? {n} {n,} {n,m}` (lazy forms too: they match the same strings). Like RE2 it has no
 * backreferences or lookaround; those, flags and malformed patterns throw, and the caller treats
 * a pattern that does not compile as matching nothing, as Docker does.
 */

type Pred = (code: number) => boolean;

type Node =
  | { kind: 'char'; pred: Pred }
  | { kind: 'cat'; items: Node[] }
  | { kind: 'alt'; alts: Node[] }
  | { kind: 'repeat'; node: Node; min: number; max: number }
  | { kind: 'begin' }
  | { kind: 'end' };

type Inst =
  | { op: 'char'; pred: Pred; next: number }
  | { op: 'split'; a: number; b: number }
  | { op: 'jump'; to: number }
  | { op: 'begin'; next: number }
  | { op: 'end'; next: number }
  | { op: 'match' };

/** RE2's own limit on a counted repetition. */
const MAX_REPEAT = 1000;
/** Bounds the program, hence the per-character cost of a match. */
const MAX_PROGRAM = 10_000;
const MAX_PATTERN = 1000;

export class PatternError extends Error {}

const isDigit: Pred = (c) => c >= 48 && c <= 57;
const isWord: Pred = (c) => isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
// RE2's \s: [\t\n\f\r ] (not \v).
const isSpace: Pred = (c) => c === 9 || c === 10 || c === 12 || c === 13 || c === 32;
const not = (p: Pred): Pred => (c) => !p(c);
const CLASS_ESCAPES: Record<string, Pred> = { d: isDigit, D: not(isDigit), w: isWord, W: not(isWord), s: isSpace, S: not(isSpace) };
const CONTROL_ESCAPES: Record<string, number> = { n: 10, t: 9, r: 13, f: 12, v: 11, a: 7 };
const PUNCTUATION = /^[\\.+*?()|[\]{}^$\-/#&~!:,;<=>@%'"`]$/;

class Parser {
  private pos = 0;
  private readonly chars: string[];

  constructor(pattern: string) {
    this.chars = Array.from(pattern);
  }

  parse(): Node {
    const node = this.alternation();
    if (this.pos < this.chars.length) throw new PatternError(`unexpected ${this.chars[this.pos]}`);
    return node;
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private alternation(): Node {
    const alts = [this.concatenation()];
    while (this.peek() === '|') {
      this.pos++;
      alts.push(this.concatenation());
    }
    return alts.length === 1 ? alts[0]! : { kind: 'alt', alts };
  }

  private concatenation(): Node {
    const items: Node[] = [];
    while (this.pos < this.chars.length && this.peek() !== '|' && this.peek() !== ')') items.push(this.quantified());
    return { kind: 'cat', items };
  }

  private quantified(): Node {
    let node = this.atom();
    for (;;) {
      const c = this.peek();
      let min: number;
      let max: number;
      if (c === '*') [min, max] = [0, Infinity];
      else if (c === '+') [min, max] = [1, Infinity];
      else if (c === '?') [min, max] = [0, 1];
      else if (c === '{' && this.countedAhead()) [min, max] = this.counted();
      else return node;
      if (c !== '{') this.pos++;
      if (node.kind === 'begin' || node.kind === 'end') throw new PatternError('missing argument to repetition operator');
      if (node.kind === 'repeat') throw new PatternError('invalid nested repetition operator');
      if (this.peek() === '?') this.pos++;
      node = { kind: 'repeat', node, min, max };
    }
  }

  /** `{` starts a count only when it reads `{n}`, `{n,}` or `{n,m}`; otherwise it is a literal, as in RE2. */
  private countedAhead(): boolean {
    const rest = this.chars.slice(this.pos, this.pos + 12).join('');
    return /^\{\d+(,\d*)?\}/.test(rest);
  }

  private counted(): [number, number] {
    const rest = this.chars.slice(this.pos).join('');
    const m = /^\{(\d+)(,(\d*))?\}/.exec(rest)!;
    this.pos += Array.from(m[0]).length;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT) || max < min) throw new PatternError(`invalid repeat count ${m[0]}`);
    return [min, max];
  }

  private atom(): Node {
    const c = this.chars[this.pos++]!;
    switch (c) {
      case '(': {
        if (this.peek() === '?') {
          if (this.chars[this.pos + 1] !== ':') throw new PatternError('flags and lookaround are not supported');
          this.pos += 2;
        }
        const inner = this.alternation();
        if (this.chars[this.pos++] !== ')') throw new PatternError('missing )');
        return inner;
      }
      case ')':
        throw new PatternError('unexpected )');
      case '*':
      case '+':
      case '?':
        throw new PatternError('missing argument to repetition operator');
      case '^':
        return { kind: 'begin' };
      case '$':
        return { kind: 'end' };
      case '.':
        return { kind: 'char', pred: (code) => code !== 10 };
      case '[':
        return { kind: 'char', pred: this.charClass() };
      case '\\': {
        const escaped = this.escape();
        return { kind: 'char', pred: typeof escaped === 'number' ? (code) => code === escaped : escaped };
      }
      default: {
        const code = c.codePointAt(0)!;
        return { kind: 'char', pred: (x) => x === code };
      }
    }
  }

  /** After a backslash: a class escape (a predicate) or one character (its code point). */
  private escape(): Pred | number {
    const c = this.chars[this.pos++];
    if (c === undefined) throw new PatternError('trailing backslash');
    if (CLASS_ESCAPES[c]) return CLASS_ESCAPES[c]!;
    if (CONTROL_ESCAPES[c] !== undefined) return CONTROL_ESCAPES[c]!;
    if (PUNCTUATION.test(c)) return c.codePointAt(0)!;
    throw new PatternError(`invalid escape \\${c}`);
  }

  private charClass(): Pred {
    const negate = this.peek() === '^';
    if (negate) this.pos++;
    const parts: Pred[] = [];
    let first = true;
    for (;;) {
      const c = this.chars[this.pos++];
      if (c === undefined) throw new PatternError('missing ]');
      if (c === ']' && !first) break;
      first = false;
      const low = c === '\\' ? this.escape() : c.codePointAt(0)!;
      if (typeof low !== 'number') {
        parts.push(low);
        continue;
      }
      if (this.peek() === '-' && this.chars[this.pos + 1] !== undefined && this.chars[this.pos + 1] !== ']') {
        this.pos++;
        const h = this.chars[this.pos++]!;
        const high = h === '\\' ? this.escape() : h.codePointAt(0)!;
        if (typeof high !== 'number' || high < low) throw new PatternError('invalid character class range');
        parts.push((x) => x >= low && x <= high);
      } else {
        parts.push((x) => x === low);
      }
    }
    const inClass: Pred = (x) => parts.some((p) => p(x));
    return negate ? not(inClass) : inClass;
  }
}

/** Compiles the tree into a program; instruction 0 is the start. */
function compile(root: Node): Inst[] {
  const prog: Inst[] = [];
  const emit = (inst: Inst): number => {
    if (prog.length >= MAX_PROGRAM) throw new PatternError('pattern too large');
    prog.push(inst);
    return prog.length - 1;
  };
  // Each emitter returns the instructions whose `next` must point at what follows, patched later.
  type Hole = (target: number) => void;
  const gen = (node: Node): Hole[] => {
    switch (node.kind) {
      case 'char': {
        const i = emit({ op: 'char', pred: node.pred, next: -1 });
        return [(t) => ((prog[i] as { next: number }).next = t)];
      }
      case 'begin':
      case 'end': {
        const i = emit({ op: node.kind, next: -1 });
        return [(t) => ((prog[i] as { next: number }).next = t)];
      }
      case 'cat': {
        let holes: Hole[] = [];
        for (const item of node.items) {
          const start = prog.length;
          const next = gen(item);
          holes.forEach((h) => h(start));
          holes = next;
        }
        if (node.items.length === 0) {
          const i = emit({ op: 'jump', to: -1 });
          return [(t) => ((prog[i] as { to: number }).to = t)];
        }
        return holes;
      }
      case 'alt': {
        const holes: Hole[] = [];
        for (const [n, alt] of node.alts.entries()) {
          if (n === node.alts.length - 1) {
            holes.push(...gen(alt));
            break;
          }
          const split = emit({ op: 'split', a: prog.length + 1, b: -1 });
          holes.push(...gen(alt));
          (prog[split] as { b: number }).b = prog.length;
        }
        return holes;
      }
      case 'repeat': {
        let holes: Hole[] = [];
        const copy = () => {
          const start = prog.length;
          const next = gen(node.node);
          holes.forEach((h) => h(start));
          holes = next;
        };
        const optional = () => {
          const split = prog.length;
          holes.forEach((h) => h(split));
          emit({ op: 'split', a: split + 1, b: -1 });
          return (t: number) => ((prog[split] as { b: number }).b = t);
        };
        for (let n = 0; n < node.min; n++) copy();
        if (node.max === Infinity) {
          // x* : split → x → back to the split; the split's other branch leaves.
          const split = prog.length;
          const leave = optional();
          gen(node.node).forEach((h) => h(split));
          holes = [leave];
        } else {
          // x{0,k} as (x(x(x)?)?)?: every optional copy may leave for what follows.
          const leaves: Hole[] = [];
          for (let n = node.min; n < node.max; n++) {
            leaves.push(optional());
            holes = gen(node.node);
          }
          holes = [...holes, ...leaves];
        }
        if (node.max === 0) {
          // x{0} matches the empty string: it still needs an entry instruction.
          const i = emit({ op: 'jump', to: -1 });
          return [(t) => ((prog[i] as { to: number }).to = t)];
        }
        return holes;
      }
    }
  };
  const holes = gen(root);
  const match = emit({ op: 'match' });
  holes.forEach((h) => h(match));
  return prog;
}

export interface LinearRegExp {
  /** Whether the pattern matches anywhere in `text` (unanchored, as Go's MatchString). */
  test(text: string): boolean;
}

export function compileLinear(pattern: string): LinearRegExp {
  if (pattern.length > MAX_PATTERN) throw new PatternError(`pattern longer than ${MAX_PATTERN} characters`);
  const prog = compile(new Parser(pattern).parse());
  return {
    test(text: string): boolean {
      const input = Array.from(text, (ch) => ch.codePointAt(0)!);
      let current: number[] = [];
      let next: number[] = [];
      // Generation marks: a state enters a list at most once per position.
      const seen = new Uint32Array(prog.length);
      let generation = 0;
      const add = (list: number[], pc: number, pos: number): boolean => {
        const stack = [pc];
        while (stack.length) {
          const i = stack.pop()!;
          if (seen[i] === generation) continue;
          seen[i] = generation;
          const inst = prog[i]!;
          if (inst.op === 'match') return true;
          if (inst.op === 'jump') stack.push(inst.to);
          else if (inst.op === 'split') stack.push(inst.b, inst.a);
          else if (inst.op === 'begin') {
            if (pos === 0) stack.push(inst.next);
          } else if (inst.op === 'end') {
            if (pos === input.length) stack.push(inst.next);
          } else list.push(i);
        }
        return false;
      };
      for (let pos = 0; pos <= input.length; pos++) {
        generation++;
        // Unanchored: a new attempt starts at every position, sharing the same state set.
        for (const i of current) {
          const inst = prog[i] as { op: 'char'; pred: Pred; next: number };
          if (inst.pred(input[pos - 1]!) && add(next, inst.next, pos)) return true;
        }
        if (add(next, 0, pos)) return true;
        [current, next] = [next, []];
      }
      return false;
    },
  };
}
