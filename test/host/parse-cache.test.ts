// The kept parse of a host file (packages/host/src/spec/parse-cache.ts) through loadHostFile's
// `cacheDir`: what a hit gives is what parsing gives, a changed text is parsed again, and a
// cache that cannot be trusted or written is passed over. Pure file work in a temporary
// directory, no root.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ValidationError } from '@vmhost/net';
import { loadHostFile } from '../../packages/host/src/spec/load.js';
import { cachedParse, jsonExact, keepParse, PARSE_CACHE_ENTRIES } from '../../packages/host/src/spec/parse-cache.js';
import { seedYamlPath } from './fixtures/seed.js';

function scratch(): { dir: string; cache: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-parse-cache-'));
  return { dir, cache: join(dir, 'cache'), done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The one entry of the cache directory (its path), after a load. */
function entryOf(cache: string): string {
  const names = readdirSync(cache).filter((n) => n.endsWith('.json'));
  assert.equal(names.length, 1, `one kept parse in ${cache}: ${names.join(', ')}`);
  return join(cache, names[0]!);
}

test('parse cache: the second load of an unchanged host file comes from the cache, equal to a parse', async (t) => {
  const s = scratch();
  t.after(s.done);
  const file = join(s.dir, 'host.yaml');
  writeFileSync(file, readFileSync(seedYamlPath));
  const parsed = await loadHostFile(file);
  const first = await loadHostFile(file, { cacheDir: s.cache });
  assert.deepEqual(first, parsed);
  const entry = entryOf(s.cache);
  const st = statSync(entry);
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(statSync(s.cache).mode & 0o777, 0o700);
  // a hit: the kept data is what the host is resolved from (marked here to see that it was used)
  const kept = JSON.parse(readFileSync(entry, 'utf8')) as { data: { vms: Array<{ name: string }> } };
  assert.equal(kept.data.vms[0]!.name, parsed.vms[0]!.name);
  const second = await loadHostFile(file, { cacheDir: s.cache });
  assert.deepEqual(second, parsed);
  kept.data.vms[0]!.name = 'fromcache';
  writeFileSync(entry, JSON.stringify(kept), { mode: 0o600 });
  const third = await loadHostFile(file, { cacheDir: s.cache });
  assert.equal(third.vms[0]!.name, 'fromcache', 'an unchanged text is taken from the kept parse');
});

test('parse cache: an edited host file is parsed again and the kept parse replaced', async (t) => {
  const s = scratch();
  t.after(s.done);
  const file = join(s.dir, 'host.yaml');
  const text = readFileSync(seedYamlPath, 'utf8');
  writeFileSync(file, text);
  await loadHostFile(file, { cacheDir: s.cache });
  const edited = text.replace(/name: seed/, 'name: edited');
  assert.notEqual(edited, text);
  writeFileSync(file, edited);
  const host = await loadHostFile(file, { cacheDir: s.cache });
  assert.equal(host.name, 'edited');
  assert.equal(host.name, (await loadHostFile(file)).name);
  entryOf(s.cache); // replaced, not added
  // a syntax error is reported as ever, never hidden by an older kept parse
  writeFileSync(file, `${edited}\n  bad: [\n`);
  await assert.rejects(loadHostFile(file, { cacheDir: s.cache }), (e: Error) => e.name === 'HostSpecError');
});

test('parse cache: an unsafe directory or entry is passed over (the file is parsed), never an error', async (t) => {
  const s = scratch();
  t.after(s.done);
  const file = join(s.dir, 'host.yaml');
  writeFileSync(file, readFileSync(seedYamlPath));
  const parsed = await loadHostFile(file);
  // a cache directory others can write: not used, not written
  mkdirSync(s.cache);
  chmodSync(s.cache, 0o777);
  assert.deepEqual(await loadHostFile(file, { cacheDir: s.cache }), parsed);
  assert.deepEqual(readdirSync(s.cache), []);
  chmodSync(s.cache, 0o700);
  await loadHostFile(file, { cacheDir: s.cache });
  const entry = entryOf(s.cache);
  // an entry others can write is not read
  const kept = JSON.parse(readFileSync(entry, 'utf8')) as { data: { name: string } };
  kept.data.name = 'tampered';
  writeFileSync(entry, JSON.stringify(kept));
  chmodSync(entry, 0o666);
  assert.equal((await loadHostFile(file, { cacheDir: s.cache })).name, 'seed');
  // an entry that is a symlink is not followed
  rmSync(entry);
  const elsewhere = join(s.dir, 'elsewhere.json');
  writeFileSync(elsewhere, JSON.stringify(kept), { mode: 0o600 });
  symlinkSync(elsewhere, entry);
  assert.equal((await loadHostFile(file, { cacheDir: s.cache })).name, 'seed');
  // garbage in an entry is a miss
  rmSync(entry);
  writeFileSync(entry, '{"v":1,', { mode: 0o600 });
  assert.equal((await loadHostFile(file, { cacheDir: s.cache })).name, 'seed');
  // a cache directory that cannot be made (its parent is a file) is passed over too
  assert.equal((await loadHostFile(file, { cacheDir: join(file, 'cache') })).name, 'seed');
});

test('parse cache: the kept parse names the parser and the text; another of either is a miss', (t) => {
  const s = scratch();
  t.after(s.done);
  const path = join(s.dir, 'host.yaml');
  keepParse(s.cache, path, 'yaml', 'a: 1\n', { a: 1 });
  assert.deepEqual(cachedParse(s.cache, path, 'yaml', 'a: 1\n'), { data: { a: 1 } });
  assert.equal(cachedParse(s.cache, path, 'yaml', 'a: 2\n'), undefined, 'another text');
  assert.equal(cachedParse(s.cache, path, 'json', 'a: 1\n'), undefined, 'another format');
  assert.equal(cachedParse(s.cache, join(s.dir, 'other.yaml'), 'yaml', 'a: 1\n'), undefined, 'another file');
  const entry = entryOf(s.cache);
  const e = JSON.parse(readFileSync(entry, 'utf8')) as { parser: string };
  e.parser = '0'.repeat(64);
  writeFileSync(entry, JSON.stringify(e), { mode: 0o600 });
  assert.equal(cachedParse(s.cache, path, 'yaml', 'a: 1\n'), undefined, 'another parser');
});

test('parse cache: data JSON would not give back exactly is not kept', (t) => {
  const s = scratch();
  t.after(s.done);
  for (const v of [Infinity, -Infinity, NaN, -0, new Date(0), new Map(), [1, undefined], { a: undefined }, 10n]) assert.equal(jsonExact(v), false, String(v));
  for (const v of [null, 0, 1.5, 'x', true, [], {}, { a: [1, { b: 'c' }] }]) assert.equal(jsonExact(v), true, JSON.stringify(v));
  const path = join(s.dir, 'host.yaml');
  keepParse(s.cache, path, 'yaml', 'x: .inf\n', { x: Infinity });
  assert.equal(cachedParse(s.cache, path, 'yaml', 'x: .inf\n'), undefined);
});

test('parse cache: at most PARSE_CACHE_ENTRIES host files are kept, the oldest dropped', (t) => {
  const s = scratch();
  t.after(s.done);
  for (let i = 0; i < PARSE_CACHE_ENTRIES + 5; i++) keepParse(s.cache, join(s.dir, `h${i}.yaml`), 'yaml', `i: ${i}\n`, { i });
  assert.equal(readdirSync(s.cache).filter((n) => n.endsWith('.json')).length, PARSE_CACHE_ENTRIES);
  assert.deepEqual(cachedParse(s.cache, join(s.dir, `h${PARSE_CACHE_ENTRIES + 4}.yaml`), 'yaml', `i: ${PARSE_CACHE_ENTRIES + 4}\n`), { data: { i: PARSE_CACHE_ENTRIES + 4 } });
});

test('loadHostFile: a cacheDir that is not an absolute path is refused before anything is read', async () => {
  await assert.rejects(loadHostFile(seedYamlPath, { cacheDir: 'relative/cache' }), (e: unknown) => e instanceof ValidationError && e.field === 'cacheDir');
});
