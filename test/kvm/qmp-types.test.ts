// The generated QMP types: the committed file is exactly what the committed script renders from
// the committed schema snapshot, and the types say what they should (checked by tsc -b, which
// type-checks this file: a wrong type is a build error).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { QMP_COMMAND_NAMES, QMP_EVENT_NAMES, type QmpArgs, type QmpCommandName, type QmpReturn, type TypedQmpEvent } from '@vmhost/kvm';
import { GENERATED_FILE, renderQmpTypes, SCHEMA_FILE, type SchemaSnapshot } from '../../scripts/gen-qmp-types.js';

test('generated.ts is what scripts/gen-qmp-types.ts renders from schema/qmp-schema.json', () => {
  const snap = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as SchemaSnapshot;
  assert.equal(readFileSync(GENERATED_FILE, 'utf8'), renderQmpTypes(snap), 'run: node --import tsx scripts/gen-qmp-types.ts --offline');
  assert.equal(QMP_COMMAND_NAMES.length, snap.schema.filter((s) => s['meta-type'] === 'command').length);
  assert.equal(QMP_EVENT_NAMES.length, snap.schema.filter((s) => s['meta-type'] === 'event').length);
  for (const name of ['query-status', 'blockdev-snapshot-sync', 'block-commit', 'system_powerdown', 'human-monitor-command']) {
    assert.ok(QMP_COMMAND_NAMES.includes(name as QmpCommandName), name);
  }
});

test('renderer: names by first use, optional members, tolerant output enums, unions, deprecation', () => {
  const snap: SchemaSnapshot = {
    qemu: '9.9.9',
    schema: [
      { name: '0', 'meta-type': 'object', members: [] },
      { name: '1', 'meta-type': 'object', members: [{ name: 'state', type: '2' }, { name: 'extra', type: 'int', default: null }] },
      { name: '2', 'meta-type': 'enum', values: ['on', 'off'] },
      { name: '3', 'meta-type': 'object', members: [{ name: 'mode', type: '4' }, { name: 'old', type: 'str', default: null, features: ['deprecated'] }] },
      { name: '4', 'meta-type': 'enum', values: ['a', 'b'] },
      { name: '5', 'meta-type': 'object', tag: 'kind', members: [{ name: 'kind', type: '4' }], variants: [{ case: 'a', type: '6' }, { case: 'b', type: '0' }] },
      { name: '6', 'meta-type': 'object', members: [{ name: 'size', type: 'int' }] },
      { name: '[1]', 'meta-type': 'array', 'element-type': '1' },
      { name: 'do-thing', 'meta-type': 'command', 'arg-type': '3', 'ret-type': '[1]' },
      { name: 'pick', 'meta-type': 'command', 'arg-type': '5', 'ret-type': '0', features: ['unstable'] },
      { name: 'THING_HAPPENED', 'meta-type': 'event', 'arg-type': '1' },
      { name: 'PING', 'meta-type': 'event', 'arg-type': '0' },
      { name: 'int', 'meta-type': 'builtin', 'json-type': 'int' },
      { name: 'str', 'meta-type': 'builtin', 'json-type': 'string' },
    ],
  };
  const ts = renderQmpTypes(snap);
  assert.match(ts, /export interface DoThingArgs \{\n  mode: "a" \| "b";\n  \/\*\* @deprecated \*\/\n  old\?: string;\n\}/);
  assert.match(ts, /export interface DoThingReturnItem \{\n  state: "on" \| "off" \| \(string & \{\}\);\n  extra\?: number;\n\}/);
  assert.match(ts, /"do-thing": \{ args: DoThingArgs; ret: DoThingReturnItem\[\] \};/);
  assert.match(ts, /export type PickArgs = \{\n  kind: "a" \| "b";\n\} & \(\n  \| \(\{ kind: "a" \} & PickArgsA\)\n  \| \(\{ kind: "b" \}\)/);
  assert.match(ts, /"THING_HAPPENED": DoThingReturnItem;/);
  assert.match(ts, /"PING": undefined;/);
  assert.match(ts, /QMP_SCHEMA_QEMU_VERSION = "9\.9\.9"/);
});

// Compile-time checks (tsc -b fails if any of these types is wrong).
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const checks: [
  Equal<QmpReturn<'query-status'>['running'], boolean>,
  Equal<QmpArgs<'blockdev-snapshot-sync'>['snapshot-file'], string>,
  Equal<TypedQmpEvent<'SHUTDOWN'>['data']['guest'], boolean>,
  Equal<QmpReturn<'human-monitor-command'>, string>,
] = [true, true, true, true];
test('type-level checks compiled', () => assert.deepEqual(checks, [true, true, true, true]));
