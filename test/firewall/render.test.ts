// Golden batches: the same model renders byte-identical text, checked against test/firewall/golden.
// Regenerate after an intended change with: UPDATE_GOLDEN=1 node scripts/run-tests.mjs test/firewall
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eui64LinkLocal, render } from '@vmhost/firewall';
import { goldenModels } from './models.js';

const dir = join(import.meta.dirname, 'golden');

for (const [name, model] of Object.entries(goldenModels)) {
  test(`golden: ${name}`, () => {
    const out = render(model);
    for (const fam of ['ipv4', 'ipv6', 'bridge'] as const) {
      const file = join(dir, `${name}.${fam}`);
      // models without ports have no ebtables part, and no .bridge file
      if (fam === 'bridge' && (model.ports ?? []).length === 0) {
        assert.equal(out.bridge, '');
        assert.ok(!existsSync(file), `unexpected golden file ${file}`);
        continue;
      }
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, out[fam]);
      assert.ok(existsSync(file), `missing golden file ${file}`);
      assert.equal(out[fam], readFileSync(file, 'utf8'), `${name}.${fam} differs from the golden file`);
    }
  });
}

test('render is deterministic and does not depend on object key order or group order', () => {
  const m = goldenModels.groups!;
  const a = render(m);
  const reordered = JSON.parse(JSON.stringify({ portForwards: [...(m.portForwards ?? [])].reverse(), owner: m.owner }));
  // Reversing the forwards changes only the order of rules inside a chain, never the chain layout.
  const b = render(reordered);
  assert.deepEqual(render(m), a);
  const chains = (s: string) => s.split('\n').filter((l) => l.startsWith(':') || l.startsWith('-I')).join('\n');
  assert.equal(chains(b.ipv4), chains(a.ipv4));
});

test('every rule outside the private chains carries the owner comment, and names stay within 28 characters', () => {
  for (const model of Object.values(goldenModels)) {
    const out = render(model);
    for (const text of [out.ipv4, out.ipv6]) {
      for (const line of text.split('\n')) {
        const chainDecl = /^:(\S+)/.exec(line);
        if (chainDecl) {
          assert.ok(chainDecl[1]!.startsWith(`VMHOST-${model.owner}-`), line);
          assert.ok(chainDecl[1]!.length <= 28, line);
        }
        const rule = /^-[AI] (\S+)/.exec(line);
        if (rule && !rule[1]!.startsWith('VMHOST-')) {
          assert.match(line, new RegExp(`^-I ${rule[1]} 1 -m comment --comment "vmhost:${model.owner}" -j VMHOST-${model.owner}-[A-Z]+$`));
        }
        assert.doesNotMatch(line, /^-[PFXZN] |^:[A-Z]+ (ACCEPT|DROP)/, 'never a policy, flush or delete of a built-in chain');
      }
    }
  }
});

test('ebtables batches: one DROP-policy chain per isolated port, entered only by `-i <port>` from nat PREROUTING', () => {
  for (const model of Object.values(goldenModels)) {
    const text = render(model).bridge;
    if (text === '') continue;
    const ports = (model.ports ?? []).filter((p) => p.isolation !== false);
    const lines = text.split('\n').filter((l) => l !== '');
    assert.deepEqual(lines.filter((l) => l.startsWith('*')), ['*nat'], 'one table: one transaction');
    assert.ok(!lines.includes('COMMIT'));
    const decls = lines.filter((l) => l.startsWith(':'));
    assert.deepEqual(decls.sort(), ports.map((p) => `:VMHOST-${model.owner}-${p.group}-S DROP`).sort());
    const jumps = lines.filter((l) => l.startsWith('-I '));
    assert.deepEqual(jumps.sort(), ports.map((p) => `-I PREROUTING 1 -i ${p.interface} -j VMHOST-${model.owner}-${p.group}-S`).sort());
    for (const l of lines) if (l.startsWith('-A ')) assert.match(l, new RegExp(`^-A VMHOST-${model.owner}-[A-Za-z0-9_]+-S .* -j (DROP|RETURN)$`));
    for (const d of decls) assert.ok(d.split(' ')[0]!.length - 1 <= 28, d);
  }
});

test('the link-local address of a port is the modified EUI-64 one of its MAC', () => {
  assert.equal(eui64LinkLocal('52:54:00:12:34:56'), 'fe80::5054:ff:fe12:3456');
  assert.equal(eui64LinkLocal('00:00:5e:00:53:01'), 'fe80::200:5eff:fe00:5301');
  assert.equal(eui64LinkLocal('02:00:00:00:00:01'), 'fe80::ff:fe00:1');
});
