// The documentation of QEMU's QMP schema, for the TSDoc of the generated types: parsed from the
// QMP reference manual page that QEMU builds from its QAPI doc comments (qemu-qmp-ref(7), shipped
// by Debian's qemu-system-common as /usr/share/man/man7/qemu-qmp-ref.7.gz, for exactly the
// installed build). `parseQmpRefMan` is a pure function of the page's roff text; the parsed form is
// committed as packages/kvm/schema/qmp-docs.json next to the schema snapshot, so the types are
// rendered deterministically from committed inputs. Examples are left out.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

/** One member (argument, member, enum value, feature) with its text. */
export interface DocMember {
  /** The QAPI type as the manual names it ('int', 'BlockDeviceInfo', 'array of BlockInfo'); absent for enum values and features. */
  type?: string;
  optional?: boolean;
  doc: string;
}

/** The documentation of one command, event or type. */
export interface DocEntry {
  kind: 'Command' | 'Event' | 'Object' | 'Enum' | 'Alternate';
  /** The description (paragraphs separated by an empty line). */
  doc: string;
  /** Arguments (commands, events), members (objects, alternates) or values (enums). */
  members: Record<string, DocMember>;
  /** Types whose members this one includes ("The members of X"). */
  bases?: string[];
  /** Union branches: tag value → the type of its members. */
  variants?: Record<string, string>;
  returns?: string;
  /** The type the Returns text names first (a documented object or alternate), e.g. 'StatusInfo'. */
  returnsType?: string;
  since?: string;
  notes?: string;
  features?: Record<string, string>;
}

/** Everything the page documents, by QAPI name. */
export interface QmpDocs {
  /** The QEMU version in the page's header. */
  qemu: string;
  entries: Record<string, DocEntry>;
}

/** roff escapes the QAPI manual uses, in plain text. */
export function unroff(s: string): string {
  return s
    .replace(/\\f(?:\(..|\[[^\]]*\]|.)/g, '')
    .replace(/\\\(dq|\\\(lq|\\\(rq/g, '"')
    .replace(/\\\(aq|\\\(oq|\\\(cq/g, "'")
    .replace(/\\\(ga/g, '`')
    .replace(/\\\(ti/g, '~')
    .replace(/\\\(ha/g, '^')
    .replace(/\\\(em/g, '—')
    .replace(/\\\(en/g, '–')
    .replace(/\\\(bu/g, '•')
    .replace(/\\\(co/g, '©')
    .replace(/\\\(../g, '')
    .replace(/\\-/g, '-')
    .replace(/\\e/g, '\\')
    .replace(/\\[&%]/g, '')
    .replace(/\\ /g, ' ');
}

const SECTION = /^\.SS \\fB(.+?)\\fP \((Command|Event|Object|Enum|Alternate)\)\s*$/;

/** Parses the roff source of qemu-qmp-ref(7). */
export function parseQmpRefMan(roff: string): QmpDocs {
  const lines = roff.split('\n');
  const qemu = /^\.TH\s+"[^"]*"\s+"[^"]*"\s+"[^"]*"\s+"([^"]*)"/m.exec(roff)?.[1] ?? '';
  const entries: Record<string, DocEntry> = {};
  let entry: DocEntry | undefined;
  let section = 'doc'; // doc | members | returns | since | notes | features | skip
  let text: string[] = []; // the paragraph lines of the current text target
  let term: { kind: 'member'; name: string; m: DocMember } | { kind: 'variant' } | { kind: 'feature'; name: string } | undefined;
  let nofill = false;
  const returnsNames = new Map<DocEntry, string[]>();

  const flush = (): void => {
    const body = text.join('\n').replace(/\n{3,}/g, '\n\n').trim();
    text = [];
    if (!entry || !body) return;
    if (term?.kind === 'member') term.m.doc = body;
    else if (term?.kind === 'feature') (entry.features ??= {})[term.name] = body;
    else if (section === 'doc') entry.doc = entry.doc ? `${entry.doc}\n\n${body}` : body;
    else if (section === 'returns') entry.returns = body;
    else if (section === 'since') entry.since = body;
    else if (section === 'notes') entry.notes = entry.notes ? `${entry.notes}\n\n${body}` : body;
  };

  for (const line of lines) {
    const head = SECTION.exec(line);
    if (head || line.startsWith('.SH')) {
      flush();
      term = undefined;
      entry = undefined;
      if (head) {
        entry = { kind: head[2] as DocEntry['kind'], doc: '', members: {} };
        entries[unroff(head[1]!)] = entry;
        section = 'doc';
      }
      continue;
    }
    if (!entry) continue;
    if (line.startsWith('.SS ')) {
      flush();
      term = undefined;
      const title = unroff(line.slice(4)).trim();
      section = ({ Arguments: 'members', Members: 'members', Values: 'members', Returns: 'returns', Since: 'since', Note: 'notes', Notes: 'notes', Features: 'features' } as Record<string, string>)[title] ?? 'skip';
      continue;
    }
    if (section === 'skip') continue;
    if (section === 'returns') {
      for (const m of line.matchAll(/\\fB([A-Za-z][A-Za-z0-9_]*)\\fP/g)) {
        if (!returnsNames.has(entry)) returnsNames.set(entry, []);
        returnsNames.get(entry)!.push(m[1]!);
      }
    }
    if (line.startsWith('.TP')) {
      flush();
      term = undefined;
      continue;
    }
    if (line.startsWith('.B ') && term === undefined && (section === 'members' || section === 'features')) {
      const t = line.slice(3);
      const variant = /^The members of \\fB(.+?)\\fP(?: when \\fB(.+?)\\fP is \\fB(.+?)\\fP)?\s*$/.exec(t);
      if (variant) {
        if (variant[2] === undefined) (entry.bases ??= []).push(unroff(variant[1]!));
        else (entry.variants ??= {})[unroff(variant[3]!).replace(/^"|"$/g, '')] = unroff(variant[1]!);
        term = { kind: 'variant' };
        continue;
      }
      const member = /^\\fB(.+?)\\fP(?:: \\fB(.+?)\\fP)?( \(optional\))?\s*$/.exec(t);
      if (member) {
        const name = unroff(member[1]!);
        if (section === 'features') term = { kind: 'feature', name };
        else {
          const m: DocMember = { doc: '' };
          if (member[2] !== undefined) m.type = unroff(member[2]);
          if (member[3]) m.optional = true;
          entry.members[name] = m;
          term = { kind: 'member', name, m };
        }
        continue;
      }
    }
    if (line === '.nf') nofill = true;
    else if (line === '.fi') nofill = false;
    if (line.startsWith('.IP ')) {
      text.push('', `${/\\\(bu/.test(line) ? '-' : ''}`);
      continue;
    }
    if (line === '.sp' || line === '.PP' || line === '.UNINDENT') {
      if (line !== '.UNINDENT' || term === undefined) text.push('');
      continue;
    }
    if (line.startsWith('.') || line.startsWith("'")) continue; // other requests: layout only
    const plain = unroff(line);
    // a bullet paragraph's first line joins its "-" marker
    if (text.length && text[text.length - 1] === '-') text[text.length - 1] = `- ${plain}`;
    else text.push(nofill ? plain : plain.trimEnd());
  }
  flush();
  for (const [e, names] of returnsNames) {
    const t = names.find((n) => entries[n]?.kind === 'Object' || entries[n]?.kind === 'Alternate');
    if (t) e.returnsType = t;
  }
  return { qemu, entries };
}

/** Reads and parses an installed qemu-qmp-ref(7) (gzip or plain). */
export function readQmpRefMan(path = '/usr/share/man/man7/qemu-qmp-ref.7.gz'): QmpDocs {
  const raw = readFileSync(path);
  return parseQmpRefMan((path.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8'));
}

/** The committed form: one entry per line, sorted, so diffs between QEMU versions read well. */
export function serializeDocs(docs: QmpDocs): string {
  const names = Object.keys(docs.entries).sort();
  return `{"qemu": ${JSON.stringify(docs.qemu)}, "entries": {\n${names.map((n) => `${JSON.stringify(n)}: ${JSON.stringify(docs.entries[n])}`).join(',\n')}\n}}\n`;
}
