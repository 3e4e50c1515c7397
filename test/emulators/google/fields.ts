// Partial responses for the Google emulator: the standard `fields` parameter (discovery document,
// top-level "parameters": "Selector specifying which fields to include in a partial response").
// Grammar as Google's performance guide gives it: `a,b` several fields, `a/b` a field inside another,
// `a(b,c)` several fields inside one, `*` every field; arrays apply the selection to each element.
import * as E from './errors.js';

/** A parsed selection: field name → true (the whole value) or a selection inside it. */
export type Selection = Map<string, Selection | true>;

function merge(into: Selection, name: string, sub: Selection | true): void {
  const prev = into.get(name);
  if (prev === true || sub === true) {
    into.set(name, true);
    return;
  }
  if (prev === undefined) {
    into.set(name, sub);
    return;
  }
  for (const [k, v] of sub) merge(prev, k, v);
}

/** Parses a `fields` value; a malformed one is Google's 400 invalidParameter. */
export function parseFields(raw: string): Selection {
  const spec = raw.replace(/\s+/g, '');
  let i = 0;
  const fail = (): never => {
    throw E.invalid(`Invalid field selection ${raw}`, 'invalidParameter');
  };
  const name = (): string => {
    const m = /^(\*|[A-Za-z0-9_.@-]+)/.exec(spec.slice(i));
    if (!m) return fail();
    i += m[0].length;
    return m[0];
  };
  // list := item (',' item)* ; item := name ('/' name)* ('(' list ')')?
  const list = (): Selection => {
    const out: Selection = new Map();
    for (;;) {
      const path = [name()];
      while (spec[i] === '/') {
        i++;
        path.push(name());
      }
      let leaf: Selection | true = true;
      if (spec[i] === '(') {
        i++;
        leaf = list();
        if (spec[i] !== ')') fail();
        i++;
      }
      let sub: Selection | true = leaf;
      for (let k = path.length - 1; k >= 1; k--) sub = new Map([[path[k]!, sub]]);
      merge(out, path[0]!, sub);
      if (spec[i] !== ',') return out;
      i++;
    }
  };
  if (spec === '') fail();
  const out = list();
  if (i !== spec.length) fail();
  return out;
}

/** The parts of a JSON value the selection names; fields the value does not have are left out. */
export function applyFields(value: unknown, sel: Selection): unknown {
  if (Array.isArray(value)) return value.map((v) => applyFields(v, sel));
  if (value === null || typeof value !== 'object') return value;
  const src = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  // Keys keep the resource's own order, as Google's partial responses do.
  for (const [k, v] of Object.entries(src)) {
    const sub = sel.get(k) ?? sel.get('*');
    if (sub === undefined) continue;
    out[k] = sub === true ? v : applyFields(v, sub);
  }
  return out;
}
