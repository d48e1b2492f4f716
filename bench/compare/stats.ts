// Shared pieces of bench:compare: medians and spreads, alternated rounds, and waiting for the
// kernel to finish the asynchronous clean-up of a deleted namespace before the next measurement.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Median of a non-empty list. */
export function median(a: readonly number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** `min–max` of a list, for the spread column. */
/** How long `f` takes, in milliseconds. */
export async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

export function spread(a: readonly number[], digits = 0): string {
  return `${Math.min(...a).toFixed(digits)}–${Math.max(...a).toFixed(digits)}`;
}

/** The order of `items` in round `r`: rotated by r, so every item goes first once every items.length rounds. */
export function rotated<T>(items: readonly T[], r: number): T[] {
  const k = r % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

function cpuTimes(): { system: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { system: (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0), total };
}

/**
 * Waits until the kernel is quiet: the share of all CPU time spent in the kernel (system, irq,
 * softirq: where the deferred clean-up of a deleted namespace's links runs, in kworkers) stays
 * under `threshold` for `windowMs`, at most `timeoutMs`. Returns how long it waited and whether it
 * settled (on a machine busy with other work it may not; the bench prints that).
 */
export async function quiesce(threshold = 0.08, windowMs = 300, timeoutMs = 20_000): Promise<{ ms: number; settled: boolean }> {
  const t0 = Date.now();
  let prev = cpuTimes();
  while (Date.now() - t0 < timeoutMs) {
    await sleep(windowMs);
    const now = cpuTimes();
    const dt = now.total - prev.total;
    const share = dt > 0 ? (now.system - prev.system) / dt : 0;
    prev = now;
    if (share < threshold) return { ms: Date.now() - t0, settled: true };
  }
  return { ms: Date.now() - t0, settled: false };
}

/** One row of the comparison table. */
export interface Row {
  section: string;
  what: string;
  tool: string;
  /** Median of the rounds, in `unit`. */
  value: number;
  unit: 'ms' | '/s';
  rounds: number[];
  /** The value of the row this one is compared with (the anchor), if any. */
  anchor?: string;
  ratio?: number;
  note?: string;
}

/** Prints rows as an aligned text table (or Markdown with `markdown`). */
export function formatRows(rows: readonly Row[], markdown = false): string {
  const head = ['section', 'what', 'tool', 'median', 'spread', 'ratio'];
  const body = rows.map((r) => [
    r.section,
    r.what,
    r.tool,
    r.unit === 'ms' ? `${r.value.toFixed(r.value < 10 ? 1 : 0)} ms` : `${Math.round(r.value)}/s`,
    r.rounds.length > 1 ? spread(r.rounds, r.unit === 'ms' && r.value < 10 ? 1 : 0) : '',
    r.ratio !== undefined ? `${r.ratio.toFixed(2)}x ${r.anchor ?? ''}`.trim() : '',
  ]);
  if (markdown) {
    const esc = (s: string) => s.replace(/\|/g, '\\|');
    return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...body.map((b) => `| ${b.map(esc).join(' | ')} |`)].join('\n');
  }
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(w[i]!)).join('  ').trimEnd();
  return [line(head), ...body.map(line)].join('\n');
}
