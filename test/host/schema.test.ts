// The JSON Schema of the host file (packages/host/schema/host.schema.json): generated from the
// validator's field table and checked in, so a drift fails here; checked with a real JSON Schema
// validator (ajv, draft-07) against every good host file of the repository (the seed fixtures,
// the README's, the hostile files' base) and against the hostile files whose fault a schema can
// express (each must fail it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { hostFileSchema, hostFileSchemaText, schemaUrl } from '../../packages/host/src/spec/json-schema.js';
import { resolveHost } from '../../packages/host/src/spec/resolve.js';
import { seedJsonPath, seedYamlPath } from './fixtures/seed.js';
import { baseHost, hostileCases } from './hostile/generate.js';

const pkgDir = join(import.meta.dirname, '..', '..', 'packages', 'host');
const schemaFile = join(pkgDir, 'schema', 'host.schema.json');
const { version, exports } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string; exports: Record<string, unknown> };
const validate = new Ajv({ allErrors: true, strict: true }).compile(JSON.parse(readFileSync(schemaFile, 'utf8')) as object);
const errorsOf = (data: unknown): string => JSON.stringify(validate.errors?.slice(0, 3));

test('the checked-in schema is what the field table generates (npm run schema), and the package exports it', () => {
  assert.equal(readFileSync(schemaFile, 'utf8'), hostFileSchemaText(version), 'schema/host.schema.json is stale: run `npm run schema`');
  assert.equal(hostFileSchema(version).$id, schemaUrl(version));
  assert.equal(exports['./schema.json'], './schema/host.schema.json');
});

test('every good host file of the repository passes the schema (and the validator)', () => {
  const readme = readFileSync(join(pkgDir, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((y) => /^uplink:/m.test(y));
  assert.ok(blocks.length >= 1);
  assert.match(blocks[0]!, /^# yaml-language-server: \$schema=/, 'the README host file names the schema for editors');
  const good: Array<[string, unknown]> = [
    ['seed.yaml', parse(readFileSync(seedYamlPath, 'utf8'))],
    ['seed.json', JSON.parse(readFileSync(seedJsonPath, 'utf8'))],
    ['hostile base', baseHost()],
    ...blocks.map((y, i): [string, unknown] => [`README block ${i}`, parse(y)]),
  ];
  for (const [name, data] of good) {
    assert.ok(validate(data), `${name}: ${errorsOf(data)}`);
    assert.doesNotThrow(() => resolveHost(data, '/srv'), name);
  }
  // null (an empty YAML value) counts as left out, for the schema too
  assert.ok(validate(parse('uplink: eth0\nbridge: { name: br0, ipv4: 10.0.0.1/8, mac: ~ }\nvms:\ndhcp: ~\n')), errorsOf(null));
});

test('the hostile host files a schema can judge all fail it', () => {
  const cases = hostileCases().filter((c) => c.data !== undefined);
  const expressible = cases.filter((c) => c.schema);
  assert.ok(expressible.length >= 100, `${expressible.length} cases`);
  for (const c of expressible) assert.equal(validate(c.data), false, `${c.name}: the schema accepts it`);
  // the rest is the validator's (subnets, uniqueness, lease seconds, ...): the schema may accept those
  const passing = cases.filter((c) => !c.schema && validate(c.data)).length;
  console.log(`schema: ${expressible.length} expressible hostile files fail it; ${passing} of ${cases.length - expressible.length} others pass it (validator-only checks)`);
});
