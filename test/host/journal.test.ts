// The state file's journal (engine/journal.ts): each change appended as one line before it is
// acted on, replayed onto the state file it names by hash; a line torn by a kill is ignored, a
// journal of another state file (a compaction killed before it removed it) is ignored, anything
// else that is not a change of the record is refused naming the journal and the line; a failed
// append leaves the state in memory as it was; compaction leaves the state file alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostStateError } from '../../packages/host/src/errors.js';
import type { StateRecord } from '../../packages/host/src/engine/records.js';
import { checkStateDir } from '../../packages/host/src/engine/state-dir.js';
import { Journal, loadState, moveAside, readState, writeState, type StateFile } from '../../packages/host/src/engine/state.js';

const link = (name: string, status: 'intended' | 'done' = 'done'): StateRecord => ({ kind: 'link', id: `link:${name}`, status, data: { name, kind: 'tap', master: 'br0' }, ifindex: status === 'done' ? 7 : null, temp: status === 'done' ? null : '0123456789a' });
const route = (n: number): StateRecord => ({ kind: 'route', id: `route:2001:db8::${n}/128`, status: 'done', data: { to: `2001:db8::${n}/128`, dev: 'br0' } });

function withDir(fn: (dir: string) => void): void {
  const base = mkdtempSync(join(tmpdir(), 'vmhost-journal-'));
  try {
    fn(checkStateDir(join(base, 'state'), true)!);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

/** A journal over the state of `dir` as loadState reads it. */
function open(dir: string): Journal {
  const { state, base } = loadState(dir, 'seed');
  return new Journal(dir, state, base, (s) => writeState(dir, s));
}

const ids = (s: StateFile): string[] => s.entries.map((e) => e.id);

test('changes are appended (one line each) and replayed onto the state file; compaction writes it whole and removes the journal', () => {
  withDir((dir) => {
    writeState(dir, { version: 2, name: 'seed', entries: [link('br0')], updatedAt: '' });
    const before = readFileSync(join(dir, 'state.json'), 'utf8');
    const j = open(dir);
    j.put(link('vmt-a', 'intended'));
    j.put(link('vmt-a'));
    j.put(route(1));
    assert.equal(j.drop('route:2001:db8::1/128'), 2);
    j.put(route(1), 1); // an undo puts a record back at its place
    assert.equal(readFileSync(join(dir, 'state.json'), 'utf8'), before, 'the state file is not rewritten per change');
    const lines = readFileSync(join(dir, 'state.log'), 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 6, 'a header and one line per change');
    assert.equal(statSync(join(dir, 'state.log')).mode & 0o777, 0o600);
    assert.deepEqual(readState(dir, 'seed'), j.state, 'the state file plus its journal is the record');
    assert.deepEqual(ids(j.state), ['link:br0', 'route:2001:db8::1/128', 'link:vmt-a']);
    j.compact();
    j.close();
    assert.deepEqual(readdirSync(dir), ['state.json']);
    assert.deepEqual(readState(dir, 'seed').entries, j.state.entries);
  });
});

test('a line torn by a kill (no newline) is ignored; a journal of another state file is ignored', () => {
  withDir((dir) => {
    writeState(dir, { version: 2, name: 'seed', entries: [link('br0')], updatedAt: '' });
    const j = open(dir);
    j.put(link('vmt-a'));
    j.close();
    appendFileSync(join(dir, 'state.log'), '{"op":"put","record":{"kind":"li');
    assert.deepEqual(ids(readState(dir, 'seed')), ['link:br0', 'link:vmt-a']);
    // compacted meanwhile (a new state file): the journal names the old one's hash
    writeFileSync(join(dir, 'keep.log'), readFileSync(join(dir, 'state.log')));
    writeState(dir, { version: 2, name: 'seed', entries: [link('br1')], updatedAt: '' });
    writeFileSync(join(dir, 'state.log'), readFileSync(join(dir, 'keep.log')), { mode: 0o600 });
    assert.deepEqual(ids(readState(dir, 'seed')), ['link:br1']);
    // and the next run's journal replaces it
    const k = open(dir);
    k.put(route(2));
    k.close();
    assert.deepEqual(ids(readState(dir, 'seed')), ['link:br1', 'route:2001:db8::2/128']);
  });
});

test('a journal without a state file is based on none; two writes of the same state never have the same bytes', () => {
  withDir((dir) => {
    const j = open(dir);
    j.put(link('br0'));
    j.close();
    assert.equal(existsSync(join(dir, 'state.json')), false);
    assert.deepEqual(ids(readState(dir, 'seed')), ['link:br0']);
    const s: StateFile = { version: 2, name: 'seed', entries: [link('br0')], updatedAt: '' };
    assert.notEqual(writeState(dir, s), writeState(dir, s));
  });
});

test('a journal line that is not a change of the record is refused, naming the journal and the line', () => {
  withDir((dir) => {
    writeState(dir, { version: 2, name: 'seed', entries: [], updatedAt: '' });
    const j = open(dir);
    j.put(link('br0'));
    j.close();
    const good = readFileSync(join(dir, 'state.log'), 'utf8');
    const cases: Array<[string, RegExp]> = [
      ['not json\n', /line 3: not JSON/],
      ['[1]\n', /line 3: expected an object/],
      ['{"op":"run","cmd":"rm -rf /"}\n', /line 3: op: expected "put" or "drop"/],
      ['{"op":"drop","id":"link:br0","also":1}\n', /line 3: unknown field "also"/],
      ['{"op":"put","record":{"kind":"vm","id":"vm:x","status":"done","data":{"name":"x","fingerprint":null,"qemuBinary":"/tmp/evil"}}}\n', /line 3: record\.data: unknown field "qemuBinary"/],
      ['{"op":"put","record":{"kind":"sysctl","id":"sysctl:kernel.core_pattern","status":"done","data":{"key":"kernel.core_pattern","value":"1"},"previous":"0"}}\n', /is not a sysctl vmhost sets/],
      ['{"op":"put","record":{"kind":"link","id":"link:br0","status":"done","data":{"name":"br0","kind":"tap","master":"br0"},"ifindex":1,"temp":null},"at":-1}\n', /line 3: at: expected a position/],
    ];
    for (const [line, why] of cases) {
      writeFileSync(join(dir, 'state.log'), good + line, { mode: 0o600 });
      assert.throws(
        () => readState(dir, 'seed'),
        (e: unknown) => e instanceof HostStateError && e.code === 'EHOST_STATE_CORRUPT' && e.file === join(dir, 'state.log') && why.test(e.message),
        line,
      );
    }
    // moved aside with the state file by the commands that rebuild the record
    moveAside(dir);
    assert.deepEqual(readdirSync(dir).map((f) => f.replace(/corrupt-.*/, 'corrupt-')).sort(), ['state.json.corrupt-', 'state.log.corrupt-']);
  });
});

test('a change that cannot be appended fails and leaves the state in memory as it was', () => {
  withDir((dir) => {
    writeState(dir, { version: 2, name: 'seed', entries: [link('br0')], updatedAt: '' });
    const j = open(dir);
    mkdirSync(join(dir, 'state.log')); // the journal cannot be made
    assert.throws(() => j.put(link('vmt-a')), /state\.log/);
    assert.throws(() => j.drop('link:br0'), /state\.log/);
    assert.deepEqual(ids(j.state), ['link:br0']);
    assert.equal(j.drop('link:gone'), -1, 'dropping what is not recorded writes nothing');
  });
});
