// Golden batches: the same model renders byte-identical text, checked against test/firewall/golden.
// Regenerate after an intended change with: UPDATE_GOLDEN=1 node scripts/run-tests.mjs test/firewall
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { render } from '@vmhost/firewall';
import { goldenModels } from './models.js';

const dir = join(import.meta.dirname, 'golden');

for (const [name, model] of Object.entries(goldenModels)) {
  test(`golden: ${name}`, () => {
    const out = render(model);
    for (const fam of ['ipv4', 'ipv6'] as const) {
      const file = join(dir, `${name}.${fam}`);
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
