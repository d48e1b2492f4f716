// The error codes of every package follow one scheme (docs/errors.md): errno names only for what
// the system refused, EVALIDATION for bad input, E<AREA>_<WHAT> for the rest; and docs/errors.md
// has a row for every code in use, and no row for a code that is not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const AREAS = ['NET', 'NETLINK', 'QMP', 'VM', 'QEMU', 'DISK', 'FW', 'LAB', 'HOST', 'DNSMASQ', 'PROXY'];
const SCHEME = new RegExp(`^E(VALIDATION|(${AREAS.join('|')})_[A-Z0-9]+(_[A-Z0-9]+)*)$`);
/** String literals in the sources that look like codes but are not (conntrack states, table headers, ISO 9660 signatures). */
const NOT_CODES = new Set(['ESTABLISHED', 'EXISTS', 'EXPIRES', 'ER' /* a Rock Ridge entry signature */]);

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (name.endsWith('.ts') && name !== 'generated.ts') out.push(p);
  }
  return out;
}

/** Every `'EXXX'` literal of packages/*\/src that is not an errno name, with a file using it. */
function codesInSources(): Map<string, string> {
  const errno = new Set(Object.keys(constants.errno));
  const found = new Map<string, string>();
  for (const pkg of readdirSync(join(root, 'packages'))) {
    for (const file of sources(join(root, 'packages', pkg, 'src'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/'(E[A-Z][A-Z0-9_]*)'/g)) {
        const code = m[1]!;
        if (!errno.has(code) && !NOT_CODES.has(code) && !found.has(code)) found.set(code, file.slice(root.length + 1));
      }
    }
  }
  return found;
}

/** The codes in the first column of docs/errors.md's table of every code. */
function codesInDoc(): Set<string> {
  const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8');
  const table = doc.slice(doc.indexOf('## Every code'));
  return new Set([...table.matchAll(/^\| `(E[A-Z0-9_]+)` \|/gm)].map((m) => m[1]!));
}

test('every code of the packages follows the scheme: EVALIDATION or E<AREA>_<WHAT>', () => {
  const codes = codesInSources();
  assert.ok(codes.size > 30, `found ${codes.size} codes`);
  for (const [code, file] of codes) assert.match(code, SCHEME, `${code} (${file})`);
});

test('docs/errors.md has a row for every code in use, and only for those', () => {
  const used = codesInSources();
  const documented = codesInDoc();
  for (const [code, file] of used) assert.ok(documented.has(code), `${code} (${file}) is missing in docs/errors.md`);
  for (const code of documented) assert.ok(used.has(code), `docs/errors.md lists ${code}, which no source uses`);
});
