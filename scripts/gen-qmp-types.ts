// Generates packages/kvm/src/qmp/generated.ts: TypeScript types of every QMP command (arguments,
// return value) and event (data) of the installed QEMU, from its own runtime introspection
// (query-qmp-schema). Why introspection and not QEMU's qapi/*.json: docs/kvm-qmp-types.md.
//
//   node --conditions=vmhost-source --import tsx scripts/gen-qmp-types.ts           # introspect QEMU, write the three files
//   node --conditions=vmhost-source --import tsx scripts/gen-qmp-types.ts --offline # re-render from the committed inputs
//
// Writes packages/kvm/schema/qmp-schema.json (the introspection answer), qmp-docs.json (QEMU's QMP
// reference manual page of the same build, parsed by scripts/qmp-docs.ts: the TSDoc text) and the
// .ts file. `renderQmpTypes` is a pure function of both inputs; a unit test checks that the
// committed generated.ts is exactly what it renders from the committed inputs.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readQmpRefMan, serializeDocs, type DocEntry, type DocMember, type QmpDocs } from './qmp-docs.js';

/** One entry of query-qmp-schema's answer (SchemaInfo), as much as the generator reads. */
export interface SchemaInfo {
  name: string;
  'meta-type': 'builtin' | 'enum' | 'array' | 'object' | 'alternate' | 'command' | 'event';
  features?: string[];
  'json-type'?: string;
  'element-type'?: string;
  members?: { name?: string; type?: string; default?: null; features?: string[] }[];
  values?: string[];
  tag?: string;
  variants?: { case: string; type: string }[];
  'arg-type'?: string;
  'ret-type'?: string;
  'allow-oob'?: boolean;
}

/** The committed input: the QEMU version and its schema. */
export interface SchemaSnapshot {
  qemu: string;
  schema: SchemaInfo[];
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const SCHEMA_FILE = join(root, 'packages/kvm/schema/qmp-schema.json');
export const GENERATED_FILE = join(root, 'packages/kvm/src/qmp/generated.ts');
export const DOCS_FILE = join(root, 'packages/kvm/schema/qmp-docs.json');

/** A TSDoc comment of `paragraphs` (and tags), indented; '' when there is nothing to say. */
function tsdoc(paragraphs: (string | undefined)[], tags: string[], indent: string): string {
  const text = paragraphs.filter((p): p is string => !!p && p.trim().length > 0).join('\n\n');
  const lines = text ? text.replace(/\*\//g, '*\\/').replace(/@/g, '\\@').replace(/\{/g, '\\{').replace(/\}/g, '\\}').split('\n') : [];
  if (tags.length) {
    if (lines.length) lines.push('');
    lines.push(...tags);
  }
  if (!lines.length) return '';
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => (l ? `${indent} * ${l}` : `${indent} *`)).join('\n')}\n${indent} */\n`;
}

const BUILTIN: Record<string, string> = { str: 'string', int: 'number', number: 'number', bool: 'boolean', null: 'null', any: 'unknown' };

function pascal(s: string): string {
  return s
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');
}

function quoteKey(k: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k) ? k : JSON.stringify(k);
}

/**
 * Renders the TypeScript module from an introspected schema. Object types get names derived from
 * their first use (`QueryStatusReturn`, `BlockdevSnapshotSyncArgs`, `QueryBlockReturnItemInserted`),
 * because introspection masks QAPI's own type names.
 */
export function renderQmpTypes(snap: SchemaSnapshot, docs?: QmpDocs): string {
  const byName = new Map(snap.schema.map((s) => [s.name, s]));
  const entries = docs?.entries ?? {};
  /** A documented object or alternate by QAPI name ('array of X' names X). */
  const typeDoc = (qapiType: string | undefined): DocEntry | undefined => {
    const n = qapiType?.replace(/^array of /, '');
    const e = n === undefined ? undefined : entries[n];
    return e && (e.kind === 'Object' || e.kind === 'Alternate') ? e : undefined;
  };
  /** A member's documentation in `src`, or in its bases. */
  const memberDoc = (src: DocEntry | undefined, name: string, depth = 0): DocMember | undefined => {
    if (!src || depth > 8) return undefined;
    return src.members[name] ?? (src.bases ?? []).map((b) => memberDoc(entries[b], name, depth + 1)).find(Boolean);
  };
  /** The type of a union branch in `src`, or in its bases. */
  const variantDoc = (src: DocEntry | undefined, tagValue: string, depth = 0): string | undefined => {
    if (!src || depth > 8) return undefined;
    return src.variants?.[tagValue] ?? (src.bases ?? []).map((b) => variantDoc(entries[b], tagValue, depth + 1)).find(Boolean);
  };
  /** Where each named object type's documentation comes from. */
  const docOf = new Map<string, { entry?: DocEntry; qapi?: string; what: string }>();
  const get = (n: string): SchemaInfo => {
    const s = byName.get(n);
    if (!s) throw new Error(`schema refers to unknown type ${n}`);
    return s;
  };
  const commands = snap.schema.filter((s) => s['meta-type'] === 'command').sort((a, b) => a.name.localeCompare(b.name));
  const events = snap.schema.filter((s) => s['meta-type'] === 'event').sort((a, b) => a.name.localeCompare(b.name));

  // Which types are reachable from return values or events: their enums tolerate unknown values.
  const output = new Set<string>();
  const mark = (n: string): void => {
    if (output.has(n)) return;
    output.add(n);
    const s = get(n);
    if (s['element-type']) mark(s['element-type']);
    for (const m of s.members ?? []) if (m.type) mark(m.type);
    for (const v of s.variants ?? []) mark(v.type);
  };
  for (const c of commands) mark(c['ret-type']!);
  for (const e of events) mark(e['arg-type']!);

  // Names for object types, by first use in a deterministic walk.
  const names = new Map<string, string>();
  const used = new Set<string>();
  const order: string[] = [];
  const nameOf = (n: string, hint: string, src: { entry?: DocEntry; qapi?: string; what: string }): void => {
    const s = get(n);
    if (s['meta-type'] === 'array') return nameOf(s['element-type']!, `${hint}Item`, src);
    if (s['meta-type'] === 'alternate') {
      s.members!.forEach((m, i) => nameOf(m.type!, `${hint}Alt${i}`, { what: src.what }));
      return;
    }
    if (s['meta-type'] !== 'object' || names.has(n)) return;
    if ((s.members ?? []).length === 0 && !s.variants) return; // the empty object: inline
    let name = hint;
    for (let i = 2; used.has(name); i++) name = `${hint}${i}`;
    used.add(name);
    names.set(n, name);
    docOf.set(n, src);
    order.push(n);
    for (const m of s.members ?? []) {
      const t = memberDoc(src.entry, m.name!)?.type?.replace(/^array of /, '');
      nameOf(m.type!, `${name}${pascal(m.name!)}`, { entry: typeDoc(t), qapi: typeDoc(t) ? t : undefined, what: `member ${JSON.stringify(m.name)} of ${name}` });
    }
    for (const v of s.variants ?? []) {
      const t = variantDoc(src.entry, v.case);
      nameOf(v.type, `${name}${pascal(v.case)}`, { entry: typeDoc(t), qapi: typeDoc(t) ? t : undefined, what: `members of ${name} when ${s.tag} is ${JSON.stringify(v.case)}` });
    }
  };
  for (const c of commands) {
    const cmd = entries[c.name];
    nameOf(c['arg-type']!, `${pascal(c.name)}Args`, { entry: cmd?.kind === 'Command' ? cmd : undefined, what: `arguments of the command ${JSON.stringify(c.name)}` });
    const rt = cmd?.kind === 'Command' ? cmd.returnsType : undefined;
    nameOf(c['ret-type']!, `${pascal(c.name)}Return`, { entry: typeDoc(rt), qapi: typeDoc(rt) ? rt : undefined, what: `return value of the command ${JSON.stringify(c.name)}` });
  }
  for (const e of events) {
    const ev = entries[e.name];
    nameOf(e['arg-type']!, `${pascal(e.name.toLowerCase())}EventData`, { entry: ev?.kind === 'Event' ? ev : undefined, what: `data of the event ${JSON.stringify(e.name)}` });
  }

  const ref = (n: string): string => {
    const s = get(n);
    switch (s['meta-type']) {
      case 'builtin':
        return BUILTIN[s.name] ?? 'unknown';
      case 'enum': {
        const lits = (s.values ?? []).map((v) => JSON.stringify(v));
        if (output.has(n)) lits.push('(string & {})');
        return lits.length ? lits.join(' | ') : 'string';
      }
      case 'array': {
        const inner = ref(s['element-type']!);
        return /[|&]/.test(inner) ? `(${inner})[]` : `${inner}[]`;
      }
      case 'alternate':
        return s.members!.map((m) => ref(m.type!)).join(' | ');
      case 'object':
        return names.get(n) ?? 'Record<string, never>';
      default:
        return 'unknown';
    }
  };
  const featureTags = (features: string[] | undefined): string[] => {
    const tags: string[] = [];
    if (features?.includes('unstable')) tags.push('Unstable (QEMU feature "unstable").');
    if (features?.includes('deprecated')) tags.push('@deprecated');
    return tags;
  };
  const since = (e: DocEntry | undefined): string[] => (e?.since ? [`@since QEMU ${e.since.replace(/\s+/g, ' ')}`] : []);

  const out: string[] = [];
  out.push(`// GENERATED by scripts/gen-qmp-types.ts from packages/kvm/schema/qmp-schema.json
// (query-qmp-schema of QEMU ${snap.qemu})${docs ? ` and packages/kvm/schema/qmp-docs.json (qemu-qmp-ref(7) of QEMU ${docs.qemu})` : ''}.
// Do not edit: change the script and regenerate.
/* eslint-disable */
/**
 * Types of the QMP commands and events of QEMU ${snap.qemu}, from its runtime introspection.
 * Object type names are derived from their first use (introspection hides QAPI's names);
 * their documentation is QEMU's own (its QMP reference, built from the QAPI doc comments),
 * matched by QAPI name where the manual names the type.
 * Enums in return values and events also admit unknown strings, so a newer QEMU's values
 * still type-check; unknown fields simply pass through at run time.
 * @module
 */

/** QEMU version the types were generated from. */
export const QMP_SCHEMA_QEMU_VERSION = ${JSON.stringify(snap.qemu)};
`);
  for (const n of order) {
    const s = get(n);
    const name = names.get(n)!;
    const src = docOf.get(n);
    const members = (s.members ?? []).map((m) => `${tsdoc([memberDoc(src?.entry, m.name!)?.doc], featureTags(m.features), '  ')}  ${quoteKey(m.name!)}${m.default === null ? '?' : ''}: ${ref(m.type!)};`);
    const what = src?.qapi ? `QAPI type \`${src.qapi}\`, used as the ${src.what}.` : `The ${src?.what ?? 'type'}.`;
    const head = tsdoc([src?.qapi ? src.entry?.doc : undefined, what], [...since(src?.qapi ? src.entry : undefined), ...featureTags(s.features)], '');
    const body = members.length ? `{\n${members.join('\n')}\n}` : 'Record<string, never>';
    if (s.variants && s.tag) {
      const cases = s.variants.map((v) => {
        const t = get(v.type);
        const empty = t['meta-type'] === 'object' && (t.members ?? []).length === 0 && !t.variants;
        return `  | ({ ${quoteKey(s.tag!)}: ${JSON.stringify(v.case)} }${empty ? '' : ` & ${ref(v.type)}`})`;
      });
      out.push(`${head}export type ${name} = ${body} & (\n${cases.join('\n')}\n  | { ${quoteKey(s.tag)}: Exclude<${name}Tag, ${s.variants.map((v) => JSON.stringify(v.case)).join(' | ')}> }\n);\n`);
      const tagMember = (s.members ?? []).find((m) => m.name === s.tag);
      out.push(`/** Values of the ${JSON.stringify(s.tag)} discriminator of {@link ${name}}. */\nexport type ${name}Tag = ${tagMember ? ref(tagMember.type!) : 'string'};\n`);
    } else {
      out.push(`${head}export interface ${name} ${body}\n`);
    }
  }
  out.push('/** Every command: its arguments and its return value. */\nexport interface QmpCommandMap {');
  for (const c of commands) {
    const e = entries[c.name]?.kind === 'Command' ? entries[c.name] : undefined;
    const oob = c['allow-oob'] ? ['Allowed out of band (`exec-oob`).'] : [];
    const paras = [e?.doc, e?.returns ? `Returns: ${e.returns}` : undefined, e?.notes ? `Note: ${e.notes}` : undefined];
    out.push(`${tsdoc(paras, [...oob, ...since(e), ...featureTags(c.features)], '  ')}  ${JSON.stringify(c.name)}: { args: ${ref(c['arg-type']!)}; ret: ${ref(c['ret-type']!)} };`);
  }
  out.push('}\n');
  out.push('/** Every event: its data (`undefined` for events without data). */\nexport interface QmpEventMap {');
  for (const e of events) {
    const t = get(e['arg-type']!);
    const empty = t['meta-type'] === 'object' && (t.members ?? []).length === 0 && !t.variants;
    const d = entries[e.name]?.kind === 'Event' ? entries[e.name] : undefined;
    out.push(`${tsdoc([d?.doc, d?.notes ? `Note: ${d.notes}` : undefined], [...since(d), ...featureTags(e.features)], '  ')}  ${JSON.stringify(e.name)}: ${empty ? 'undefined' : ref(e['arg-type']!)};`);
  }
  out.push('}\n');
  out.push('/** Name of a command the generated types know. */\nexport type QmpCommandName = keyof QmpCommandMap;\n');
  out.push('/** Name of an event the generated types know. */\nexport type QmpEventName = keyof QmpEventMap;\n');
  out.push(`/** Names of every known command, sorted. */\nexport const QMP_COMMAND_NAMES: readonly QmpCommandName[] = ${JSON.stringify(commands.map((c) => c.name))};\n`);
  out.push(`/** Names of every known event, sorted. */\nexport const QMP_EVENT_NAMES: readonly QmpEventName[] = ${JSON.stringify(events.map((e) => e.name))};\n`);
  return out.join('\n');
}

/** The committed form of the schema: one entry per line, so that diffs between QEMU versions read well. */
export function serializeSnapshot(snap: SchemaSnapshot): string {
  return `{"qemu": ${JSON.stringify(snap.qemu)}, "schema": [\n${snap.schema.map((s) => JSON.stringify(s)).join(',\n')}\n]}\n`;
}

/** Runs the installed QEMU with no machine, asks query-qmp-schema, and returns the snapshot. */
export async function introspect(qemu = 'qemu-system-x86_64'): Promise<SchemaSnapshot> {
  const { QmpClient } = await import('@vmhost/kvm');
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-qmp-schema-'));
  const sock = join(dir, 'qmp.sock');
  const child = spawn(qemu, ['-machine', 'none', '-S', '-display', 'none', '-nodefaults', '-qmp', `unix:${sock},server=on,wait=off`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let alive = true;
  child.on('exit', () => (alive = false));
  try {
    const qmp = await QmpClient.connect({ path: sock, timeoutMs: 20_000, isAlive: () => alive });
    const schema = (await qmp.executeRaw('query-qmp-schema', undefined, { timeoutMs: 20_000 })) as SchemaInfo[];
    const v = qmp.greeting.version.qemu;
    await qmp.executeRaw('quit').catch(() => undefined);
    await qmp.close();
    const byNum = (a: SchemaInfo, b: SchemaInfo): number => a.name.localeCompare(b.name, 'en', { numeric: true });
    return { qemu: `${v.major}.${v.minor}.${v.micro}`, schema: [...schema].sort(byNum) };
  } finally {
    if (alive) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let snap: SchemaSnapshot;
  let docs: QmpDocs;
  if (process.argv.includes('--offline')) {
    snap = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as SchemaSnapshot;
    docs = JSON.parse(readFileSync(DOCS_FILE, 'utf8')) as QmpDocs;
  } else {
    snap = await introspect();
    docs = readQmpRefMan();
    if (docs.qemu !== snap.qemu) throw new Error(`qemu-qmp-ref(7) is of QEMU ${docs.qemu}, the binary is ${snap.qemu}`);
    writeFileSync(SCHEMA_FILE, serializeSnapshot(snap));
    writeFileSync(DOCS_FILE, serializeDocs(docs));
  }
  writeFileSync(GENERATED_FILE, renderQmpTypes(snap, docs));
  console.error(`gen-qmp-types: QEMU ${snap.qemu}: ${snap.schema.filter((s) => s['meta-type'] === 'command').length} commands, ${snap.schema.filter((s) => s['meta-type'] === 'event').length} events -> ${GENERATED_FILE}`);
}
