// The QMP line splitter (pure).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineSplitter } from '@vmhost/kvm';

const b = (s: string): Buffer => Buffer.from(s);

test('splits CRLF and LF lines, across chunks, skipping empty lines', () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push(b('{"a":1}\r\n{"b"')), [{ line: '{"a":1}' }]);
  assert.deepEqual(s.push(b(':2}')), []);
  assert.equal(s.buffered, 7);
  assert.deepEqual(s.push(b('\n\r\n\n{"c":3}\n')), [{ line: '{"b":2}' }, { line: '{"c":3}' }]);
  assert.equal(s.buffered, 0);
});

test('a byte-by-byte stream gives the same lines', () => {
  const text = '{"QMP": {"x": "é"}}\r\n{"return": {}, "id": 1}\r\n';
  const s = new LineSplitter();
  const out = [];
  for (const byte of Buffer.from(text)) out.push(...s.push(Buffer.from([byte])));
  assert.deepEqual(out, [{ line: '{"QMP": {"x": "é"}}' }, { line: '{"return": {}, "id": 1}' }]);
});

test('an over-cap line is reported once, skipped to its end, and the next line is intact', () => {
  const s = new LineSplitter(10);
  const items = [...s.push(b('0123456789ABC')), ...s.push(b('DEFGH')), ...s.push(b('IJ\nok\n'))];
  assert.equal(items.length, 2);
  assert.ok('overflow' in items[0]!);
  assert.equal((items[0] as { head: string }).head, '0123456789ABC');
  assert.deepEqual(items[1], { line: 'ok' });
  assert.ok(s.buffered <= 10);
  const s2 = new LineSplitter(4);
  assert.deepEqual(s2.push(b('12345\nab\n')).map((i) => ('line' in i ? i.line : 'OVER')), ['OVER', 'ab']);
  assert.deepEqual(new LineSplitter(4).push(b('1234\n')), [{ line: '1234' }]);
});

test('a line that is not valid UTF-8 is reported, also when split across chunks; U+FFFD itself is fine', () => {
  const s = new LineSplitter();
  const bad = Buffer.concat([b('{"a": "'), Buffer.from([0xe2, 0x82]), b('"}\r\n')]);
  assert.deepEqual(s.push(bad.subarray(0, 8)), []);
  const items = s.push(bad.subarray(8));
  assert.equal(items.length, 1);
  assert.ok('invalidUtf8' in items[0]!);
  assert.deepEqual(s.push(b('{"ok": "\ufffd"}\n')), [{ line: '{"ok": "\ufffd"}' }]);
});
