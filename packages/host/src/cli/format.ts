/**
 * Output formatting of the `vmhost` command line: aligned tables, colours, durations, plan
 * symbols, one-line error descriptions, and the human form of a host's status.
 * @module
 */
import { formatService } from './format-service.js';
import type { Conflict, HostStatus, Step, StepAction } from '../types.js';

const ANSI = /\x1b\[[0-9;]*m/g;

/** The width of `s` on a terminal (without colour escapes). */
function visibleLength(s: string): number {
  return s.replace(ANSI, '').length;
}

/**
 * Formats rows as aligned columns separated by two spaces; trailing blanks trimmed. With `headers`
 * the first line holds them. Colour escapes in cells do not count toward the widths.
 */
export function formatTable(headers: readonly string[] | null, rows: ReadonlyArray<readonly string[]>, indent = ''): string {
  const all = headers ? [headers, ...rows] : [...rows];
  const widths: number[] = [];
  for (const row of all) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell))));
  return all
    .map((row) => indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visibleLength(cell)))).join('  ').trimEnd())
    .join('\n');
}

/** A colour (or style) of a terminal. */
export type Colour = 'red' | 'green' | 'yellow' | 'cyan' | 'bold' | 'dim';
const COLOURS: Record<Colour, string> = { red: '31', green: '32', yellow: '33', cyan: '36', bold: '1', dim: '2' };

/** Paints `s` in colour `c` when `enabled`, else leaves it alone. */
export function painter(enabled: boolean): (s: string, c: Colour) => string {
  return enabled ? (s, c) => `\x1b[${COLOURS[c]}m${s}\x1b[0m` : (s) => s;
}

/** `12 ms` or `1.3 s`. */
export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The plan symbol of an action (`+` create, `~` update/set/release, `-` delete, `>` start, `<` stop, `*` restart, `=` adopt). */
export function actionSymbol(action: StepAction): string {
  switch (action) {
    case 'create':
      return '+';
    case 'update':
    case 'set':
    case 'release':
      return '~';
    case 'adopt':
      return '=';
    case 'delete':
      return '-';
    case 'start':
      return '>';
    case 'stop':
      return '<';
    case 'restart':
      return '*';
  }
}

/** The colour of an action in a plan. */
export function actionColour(action: StepAction): Colour {
  return action === 'create' || action === 'start' ? 'green' : action === 'delete' || action === 'stop' ? 'red' : 'yellow';
}

function formatPort(p: number | readonly [number, number]): string {
  return typeof p === 'number' ? String(p) : `${p[0]}-${p[1]}`;
}

/** `1 step`, `2 steps`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * One line about an error: its message, prefixed with its `code` (errno name such as `EEXIST`)
 * when the message does not already say it, and the kernel's extended-ack message when present.
 */
export function describeError(e: unknown): string {
  if (!(e instanceof Error)) {
    if (typeof e === 'object' && e !== null && 'message' in e && typeof e.message === 'string') return e.message;
    return String(e);
  }
  let msg = e.message || e.name;
  const code = 'code' in e ? e.code : undefined;
  const extack = 'extack' in e ? e.extack : undefined;
  if (typeof code === 'string' && code !== '' && !msg.includes(code)) msg = `${code}: ${msg}`;
  if (typeof extack === 'string' && extack !== '' && !msg.includes(extack)) msg += ` (kernel: ${extack})`;
  return msg.replace(/\s*\n\s*/g, ' ');
}

/** The `code` of an error (an errno name such as `EEXIST`, or vmhost's own such as `EHOST_BUSY`), if it has one. */
export function errorCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

/** The class name of an error (its type for a non-error). */
export function errorName(e: unknown): string {
  return e instanceof Error ? e.name : typeof e;
}

/** A step as printed in JSON (without the engine's extra fields). */
export function stepJson(s: Step): Step {
  return { id: s.id, action: s.action, description: s.description };
}

/** The line of a conflict in a plan: `! bridge br1 belongs to host web (...)`. */
export function conflictLine(c: Conflict): string {
  return `! ${c.message}`;
}

/** The human form of a {@link HostStatus}, one string per line. */
export function formatStatus(s: HostStatus, colour = false): string[] {
  const paint = painter(colour);
  const yes = (b: boolean, t = 'yes', f = 'no'): string => (b ? paint(t, 'green') : paint(f, 'red'));
  const lines: string[] = [];
  lines.push(`Host ${s.name}${s.netns ? ` (netns ${s.netns})` : ''}: ${s.applied ? 'applied' : paint('not applied', 'yellow')}`);
  if (s.pending?.length) lines.push(paint(`Interrupted: ${s.pending.join(', ')} recorded as intended, not confirmed (the next apply or down settles them)`, 'yellow'));
  if (s.conflicts?.length) {
    lines.push(paint(`Conflicts (apply refuses until they are gone): ${s.conflicts.length}`, 'red'));
    for (const c of s.conflicts) lines.push(`  ! ${c.message}`);
  }
  lines.push('');
  lines.push(
    formatTable(['LINK', 'ROLE', 'EXISTS', 'STATE', 'ADDRESSES'], [
      [s.bridge.name, 'bridge', yes(s.bridge.exists), s.bridge.exists ? yes(s.bridge.up, 'up', 'down') : '-', s.bridge.addresses.join(', ') || '-'],
      [s.uplink.name, 'uplink', yes(s.uplink.exists), s.uplink.exists ? yes(s.uplink.up, 'up', 'down') : '-', s.uplink.addresses.join(', ') || '-'],
    ]),
  );
  lines.push('');
  if (s.vms.length === 0) lines.push('VMs: none');
  else
    lines.push(
      formatTable(
        ['VM', 'STATE', 'QMP', 'PID', 'IPV4', 'IPV6', 'MAC', 'TAP'],
        s.vms.map((v) => [v.name, yes(v.running, 'running', 'stopped'), v.qmpStatus ?? (v.qmpBusy ? 'QMP busy' : '-'), v.pid !== undefined ? String(v.pid) : '-', v.ipv4, v.ipv6 ?? '-', v.mac, v.tap]),
      ),
    );
  lines.push('');
  if (s.forwards.length === 0) lines.push('Forwards: none');
  else
    lines.push(
      formatTable(
        ['FORWARD', 'PROTO', 'PORT', 'TO'],
        s.forwards.map((f) => [f.vm, f.protocol, formatPort(f.port), `${f.to}:${f.toPort}`]),
      ),
    );
  lines.push('');
  if (s.ipv6) {
    lines.push(`IPv6: ${s.ipv6.mode}, prefix ${s.ipv6.prefix}`);
    const rows: string[][] = [
      ['  proxy neighbours:', s.ipv6.proxyNeighbors.join(', ') || 'none'],
      ['  routes:', s.ipv6.routes.join(', ') || 'none'],
    ];
    if (s.ipv6.proxy) rows.push(['  tcp proxy:', `${yes(s.ipv6.proxy.running, 'running', 'stopped')}${s.ipv6.proxy.pid !== undefined ? ` (pid ${s.ipv6.proxy.pid})` : ''}`]);
    lines.push(formatTable(null, rows));
  } else lines.push('IPv6: off');
  if (s.shared?.length) {
    lines.push('Shared sysctls (held with the other hosts of the namespace; the last one to leave puts the original back):');
    lines.push(formatTable(null, s.shared.map((x) => [`  ${x.key}=${x.value}`, `original ${x.original}`, x.heldWith.length > 0 ? `also held by ${x.heldWith.join(', ')}` : 'held by this host only'])));
  }
  if (s.dnsmasq) lines.push(`dnsmasq: ${yes(s.dnsmasq.running, 'running', 'stopped')}${s.dnsmasq.pid !== undefined ? ` (pid ${s.dnsmasq.pid})` : ''}`);
  else lines.push('dnsmasq: not configured');
  lines.push('');
  if (s.leases.length === 0) lines.push('Leases: none');
  else
    lines.push(
      formatTable(
        ['LEASE', 'MAC', 'HOSTNAME', 'EXPIRES'],
        s.leases.map((l) => [l.ipv4, l.mac, l.hostname ?? '-', l.expires ? formatDate(l.expires) : 'never']),
      ),
    );
  lines.push(...formatService(s, paint));
  return lines.flatMap((l) => l.split('\n'));
}

function formatDate(d: Date): string {
  const t = d.getTime();
  return Number.isNaN(t) ? String(d) : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
