// The generated QMP types: the committed file is exactly what the committed script renders from
// the committed schema snapshot, and the types say what they should (checked by tsc -b, which
// type-checks this file: a wrong type is a build error).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { QMP_COMMAND_NAMES, QMP_EVENT_NAMES, type QmpArgs, type QmpCommandName, type QmpReturn, type TypedQmpEvent } from '@vmhost/kvm';
import { DOCS_FILE, GENERATED_FILE, renderQmpTypes, SCHEMA_FILE, type SchemaSnapshot } from '../../scripts/gen-qmp-types.js';
import { parseQmpRefMan, type QmpDocs } from '../../scripts/qmp-docs.js';

test('generated.ts is what scripts/gen-qmp-types.ts renders from schema/qmp-schema.json and schema/qmp-docs.json', () => {
  const snap = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as SchemaSnapshot;
  const docs = JSON.parse(readFileSync(DOCS_FILE, 'utf8')) as QmpDocs;
  assert.equal(docs.qemu, snap.qemu, 'the docs are of the same QEMU build');
  const ts = renderQmpTypes(snap, docs);
  assert.equal(readFileSync(GENERATED_FILE, 'utf8'), ts, 'run: node --import tsx scripts/gen-qmp-types.ts --offline');
  assert.equal(renderQmpTypes(snap, docs), ts, 'deterministic');
  // QEMU's own text on commands, events, their arguments and the types the manual names
  assert.match(ts, /\/\*\*\n   \* Query the run status of all VCPUs\n   \*\n   \* Returns: StatusInfo reflecting all VCPUs\n   \*\n   \* @since QEMU 0\.14\n   \*\/\n  "query-status"/);
  assert.match(ts, /QAPI type `StatusInfo`, used as the return value of the command "query-status"\.[\s\S]*?\n  \/\*\* true if all VCPUs are runnable, false if not runnable \*\/\n  running: boolean;/);
  assert.match(ts, /QAPI type `BlockDeviceInfo`, used as the member "inserted" of QueryBlockReturnItem\./);
  assert.match(ts, /QAPI type `BlockdevOptionsFile`, used as the members of BlockdevAddArgs when driver is "file"\.[\s\S]*?\/\*\* path to the image file \*\/\n  filename: string;/);
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

test('the QMP reference manual parser: entries, members, variants, bases, returns, since; roff escapes gone', () => {
  const roff = [
    '.TH "QEMU-QMP-REF" "7" "May 25, 2026" "9.9.9" "QEMU"',
    '.SH BLOCK DEVICES',
    '.SS \\fBdo\\-thing\\fP (Command)',
    '.sp',
    'Does the thing \\- \\(dqwell\\(dq, it\\(aqs fine.',
    '.sp',
    'Second paragraph with \\fBbold\\fP and a */ and @tag and {braces}.',
    '.SS Arguments',
    '.INDENT 0.0',
    '.TP',
    '.B \\fBmode\\fP: \\fBThingMode\\fP',
    'how to do it',
    '.TP',
    '.B \\fBold\\-name\\fP: \\fBarray of string\\fP (optional)',
    'an old name',
    'on two lines',
    '.TP',
    '.B The members of \\fBThingBase\\fP',
    '.TP',
    '.B The members of \\fBThingA\\fP when \\fBkind\\fP is \\fB\\(dqa\\(dq\\fP',
    '.UNINDENT',
    '.SS Returns',
    '.sp',
    'a list of \\fBThingInfo\\fP',
    '.SS Since',
    '.sp',
    '9.0',
    '.SS Example',
    '.nf',
    '\\-> { \\(dqexecute\\(dq: \\(dqdo\\-thing\\(dq }',
    '.fi',
    '.SS \\fBThingInfo\\fP (Object)',
    '.sp',
    'What a thing is.',
    '.SS Members',
    '.INDENT 0.0',
    '.TP',
    '.B \\fBsize\\fP: \\fBint\\fP',
    'its size',
    '.UNINDENT',
    '.SH NEXT CHAPTER',
    'not part of any entry',
  ].join('\n');
  const docs = parseQmpRefMan(roff);
  assert.equal(docs.qemu, '9.9.9');
  assert.deepEqual(docs.entries['do-thing'], {
    kind: 'Command',
    doc: 'Does the thing - "well", it\'s fine.\n\nSecond paragraph with bold and a */ and @tag and {braces}.',
    members: { mode: { type: 'ThingMode', doc: 'how to do it' }, 'old-name': { type: 'array of string', optional: true, doc: 'an old name\non two lines' } },
    bases: ['ThingBase'],
    variants: { a: 'ThingA' },
    returns: 'a list of ThingInfo',
    returnsType: 'ThingInfo',
    since: '9.0',
  });
  assert.deepEqual(docs.entries.ThingInfo, { kind: 'Object', doc: 'What a thing is.', members: { size: { type: 'int', doc: 'its size' } } });
  assert.deepEqual(Object.keys(docs.entries), ['do-thing', 'ThingInfo']);

  const snap: SchemaSnapshot = {
    qemu: '9.9.9',
    schema: [
      { name: '0', 'meta-type': 'object', members: [{ name: 'mode', type: 'str' }, { name: 'old-name', type: 'str', default: null }] },
      { name: '1', 'meta-type': 'object', members: [{ name: 'size', type: 'int' }] },
      { name: '[1]', 'meta-type': 'array', 'element-type': '1' },
      { name: 'do-thing', 'meta-type': 'command', 'arg-type': '0', 'ret-type': '[1]' },
      { name: 'int', 'meta-type': 'builtin', 'json-type': 'int' },
      { name: 'str', 'meta-type': 'builtin', 'json-type': 'string' },
    ],
  };
  const ts = renderQmpTypes(snap, docs);
  assert.match(ts, /  \/\*\*\n   \* Does the thing - "well", it's fine\.\n   \*\n   \* Second paragraph with bold and a \*\\\/ and \\@tag and \\\{braces\\\}\.\n   \*\n   \* Returns: a list of ThingInfo\n   \*\n   \* @since QEMU 9\.0\n   \*\/\n  "do-thing"/);
  assert.match(ts, /\/\*\* The arguments of the command "do-thing"\. \*\/\nexport interface DoThingArgs \{\n  \/\*\* how to do it \*\/\n  mode: string;\n  \/\*\*\n   \* an old name\n   \* on two lines\n   \*\/\n  "old-name"\?: string;/);
  assert.match(ts, /\/\*\*\n \* What a thing is\.\n \*\n \* QAPI type `ThingInfo`, used as the return value of the command "do-thing"\.\n \*\/\nexport interface DoThingReturnItem \{/);
  assert.match(ts, /\/\*\* its size \*\/\n  size: number;/);
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
