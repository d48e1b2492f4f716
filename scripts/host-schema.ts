// Writes the JSON Schema of the host file (packages/host/schema/host.schema.json), generated from
// the validator's field table (packages/host/src/spec/schema.ts, json-schema.ts). `npm run schema`;
// test/host/schema.test.ts fails when the checked-in file differs from what this writes.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostFileSchemaText } from '../packages/host/src/spec/json-schema.js';

const pkgDir = join(import.meta.dirname, '..', 'packages', 'host');
const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
const file = join(pkgDir, 'schema', 'host.schema.json');
mkdirSync(join(pkgDir, 'schema'), { recursive: true });
writeFileSync(file, hostFileSchemaText(version));
console.log(`schema: wrote ${file} (@vmhost/host ${version})`);
