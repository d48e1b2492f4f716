/**
 * The JSON Schema (draft-07, what editors such as the YAML language server read) of the host
 * file, generated from the validator's field table (./schema.ts): the same keys, required fields,
 * kinds, limits, patterns, defaults and descriptions. `npm run schema` writes it to
 * `packages/host/schema/host.schema.json`; a unit test regenerates it and fails on drift.
 *
 * It is what a schema can say: types, keys, ranges, patterns (names, interface names, MACs,
 * addresses and prefixes by their text, special-purpose IPv4 ranges by their first octets),
 * list sizes. What it cannot say — an address inside the bridge subnet, ports and names used
 * once, lease times in seconds, depth, size, duplicate keys, tags — the validator checks besides,
 * so a file the schema accepts can still be refused; one it refuses never passes the validator.
 * @module
 */
import {
  FORBIDDEN_PATH_TREES, FORBIDDEN_PATHS, HOST, IFNAMSIZ_MAX, IFNAME_RE, LEASE_TIME_RE, MAX_PATH_BYTES, PATH_FORBIDDEN_CHARS, RATE_RE, RESERVED_IFNAMES, SIZE_RE, SPECIAL_KINDS, SSH_KEY_TYPES,
  type Field, type ObjectField, type SpecialKind,
} from './schema.js';

/** A JSON Schema object. */
export type JsonSchema = Record<string, unknown>;

const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
/** A dotted quad as `net.isIP` accepts it (no leading zeros). */
const IPV4 = `${OCTET}(?:\\.${OCTET}){3}`;
const H16 = '[0-9a-fA-F]{1,4}';
const LS32 = `(?:${H16}:${H16}|${IPV4})`;
/** RFC 4291 text (RFC 3986's IPv6address rule), an IPv4 tail allowed. */
const IPV6 = [
  `(?:${H16}:){6}${LS32}`,
  `::(?:${H16}:){5}${LS32}`,
  `(?:${H16})?::(?:${H16}:){4}${LS32}`,
  `(?:(?:${H16}:){0,1}${H16})?::(?:${H16}:){3}${LS32}`,
  `(?:(?:${H16}:){0,2}${H16})?::(?:${H16}:){2}${LS32}`,
  `(?:(?:${H16}:){0,3}${H16})?::${H16}:${LS32}`,
  `(?:(?:${H16}:){0,4}${H16})?::${LS32}`,
  `(?:(?:${H16}:){0,5}${H16})?::${H16}`,
  `(?:(?:${H16}:){0,6}${H16})?::`,
].map((a) => `(?:${a})`).join('|');

/** Special-purpose ranges by the text of their addresses: IPv4 exactly, IPv6 in their usual written forms. */
const SPECIAL_TEXT: Record<4 | 6, Partial<Record<SpecialKind, string>>> = {
  4: {
    unspecified: '^0\\.',
    loopback: '^127\\.',
    'link-local': '^169\\.254\\.',
    multicast: '^(?:22[4-9]|23[0-9])\\.',
    broadcast: '^255\\.255\\.255\\.255$',
    reserved: '^(?:24[0-9]|25[0-5])\\.',
  },
  6: {
    unspecified: '^::$',
    loopback: '^::1$',
    'link-local': '^[fF][eE][89aAbB][0-9a-fA-F]:',
    multicast: '^[fF][fF][0-9a-fA-F]{2}:',
    'ipv4-mapped': '^::[fF]{4}:',
  },
};

/** A regular expression alternative of the integers `min` to `max`. */
function intRange(min: number, max: number): string {
  return `(?:${Array.from({ length: max - min + 1 }, (_, i) => min + i).join('|')})`;
}

/** `not` of the special ranges `kinds` of `family`, or nothing. */
function notSpecial(family: 4 | 6, kinds: readonly SpecialKind[]): JsonSchema {
  const pats = kinds.map((k) => SPECIAL_TEXT[family][k]).filter((p): p is string => p !== undefined);
  return pats.length ? { not: { type: 'string', pattern: pats.join('|') } } : {};
}

function addressSchema(family: 4 | 6, refuse: readonly SpecialKind[] = []): JsonSchema {
  return { type: 'string', pattern: `^(?:${family === 4 ? IPV4 : IPV6})$`, ...notSpecial(family, refuse) };
}

/** `f` as a JSON Schema (without its description and nullability: {@link fieldSchema} adds them). */
function kindSchema(f: Field): JsonSchema {
  switch (f.kind) {
    case 'object':
      return objectSchema(f);
    case 'list':
      return { type: 'array', items: fieldSchema(f.items, true), maxItems: f.maxItems, ...(f.unique ? { uniqueItems: true } : {}) };
    case 'pair':
      return { type: 'array', items: fieldSchema(f.items, true), minItems: 2, maxItems: 2 };
    case 'int':
      return { type: 'integer', minimum: f.min, maximum: f.max };
    case 'bool':
      return { type: 'boolean' };
    case 'enum':
      return { type: 'string', enum: [...f.values] };
    case 'name':
      return { type: 'string', maxLength: f.maxLength, pattern: f.pattern.source };
    case 'ifname':
      return { type: 'string', minLength: 1, maxLength: IFNAMSIZ_MAX, pattern: IFNAME_RE.source, not: { enum: [...RESERVED_IFNAMES] } };
    case 'mac':
      // six hex pairs, the first even (unicast), not all zero
      return { type: 'string', pattern: '^[0-9a-fA-F][02468aceACE](?:[:-][0-9a-fA-F]{2}){5}$', not: { type: 'string', pattern: '^00(?:[:-]00){5}$' } };
    case 'address': {
      const a = f.family === 'any' ? { anyOf: [addressSchema(4, f.refuse?.[4]), addressSchema(6, f.refuse?.[6])] } : addressSchema(f.family, f.refuse?.[f.family]);
      return f.word !== undefined ? { anyOf: [a, { type: 'string', enum: [f.word] }] } : a;
    }
    case 'prefix': {
      const addr = f.family === 4 ? IPV4 : IPV6;
      return { type: 'string', pattern: `^(?:${addr})/${intRange(f.minLength, f.maxLength)}$`, ...notSpecial(f.family, SPECIAL_KINDS) };
    }
    case 'path': {
      const special = [...FORBIDDEN_PATH_TREES.map((t) => `^${t}(?:/|$)`), ...FORBIDDEN_PATHS.map((p) => `^${p}$`)].join('|');
      return { type: 'string', minLength: 1, maxLength: MAX_PATH_BYTES, pattern: `^[^${PATH_FORBIDDEN_CHARS}]+$`, not: { type: 'string', pattern: special } };
    }
    case 'text':
    case 'cmdline':
      return { type: 'string', maxLength: f.maxBytes, pattern: '^[\\x20-\\x7e]*$' };
    case 'leaseTime':
      return { anyOf: [{ type: 'string', pattern: LEASE_TIME_RE.source }, { type: 'integer', minimum: f.minSeconds, maximum: f.maxSeconds }] };
    case 'port': {
      const port = { type: 'integer', minimum: 1, maximum: 65535 };
      return { anyOf: [port, { type: 'array', items: port, minItems: 2, maxItems: 2 }] };
    }
    case 'sshKey':
      // what parseSshPublicKey accepts (it checks the blob besides): TYPE BASE64 [COMMENT], one line
      return { type: 'string', maxLength: f.maxBytes, pattern: `^\\s*(?:${SSH_KEY_TYPES.map((t) => t.replace(/\./g, '\\.')).join('|')})[ \\t]+[A-Za-z0-9+/]+={0,2}(?:[ \\t][^\\r\\n\\u0000]*)?$` };
    case 'rate':
      return { type: 'string', pattern: RATE_RE.source };
    case 'size':
      return { anyOf: [{ type: 'string', pattern: SIZE_RE.source }, { type: 'integer', minimum: f.min, maximum: f.max, multipleOf: 512 }] };
    case 'disk': {
      const one = { anyOf: [kindSchema({ kind: 'path', description: '' }), objectSchema(f.item), objectSchema(f.baseItem)] };
      return { anyOf: [...one.anyOf, { type: 'array', maxItems: f.maxItems, items: one }] };
    }
  }
}

/** A field's schema with its description and default; `null` allowed for an optional field (YAML's empty value: left out). */
function fieldSchema(f: Field, required = f.required === true): JsonSchema {
  const s: JsonSchema = { description: f.description, ...kindSchema(f) };
  if ('default' in f && f.default !== undefined) s.default = f.default;
  if (required) return s;
  if (typeof s.type === 'string' && s.enum === undefined) return { ...s, type: [s.type, 'null'] };
  if (Array.isArray(s.enum)) return { ...s, type: ['string', 'null'], enum: [...(s.enum as unknown[]), null] };
  const { description, default: dflt, ...rest } = s;
  return { description, ...(dflt !== undefined ? { default: dflt } : {}), anyOf: [rest, { type: 'null' }] };
}

function objectSchema(f: ObjectField): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const [key, sub] of Object.entries(f.keys)) {
    properties[key] = fieldSchema(sub);
    if (sub.required) required.push(key);
  }
  return { type: 'object', properties, ...(required.length ? { required } : {}), additionalProperties: false };
}

/** Where the schema of `version` is published (the package's file on unpkg). */
export const schemaUrl = (version: string): string => `https://unpkg.com/@vmhost/host@${version}/schema/host.schema.json`;

/**
 * The JSON Schema of the host file of @vmhost/host `version` (its `$id` is the published URL).
 * @param version the package version, e.g. `0.1.0`.
 */
export function hostFileSchema(version: string): JsonSchema {
  const { description, ...body } = fieldSchema(HOST, true);
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: schemaUrl(version),
    title: 'vmhost host file',
    description: `${String(description)} Generated from the validator's field table by \`npm run schema\`; the validator checks more (docs/host-spec.md).`,
    ...body,
  };
}

/** The schema as the file holds it: two-space JSON and a final newline. */
export function hostFileSchemaText(version: string): string {
  return `${JSON.stringify(hostFileSchema(version), null, 2)}\n`;
}
