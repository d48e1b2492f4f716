// Reading what iproute2's tc prints (the oracle of the traffic-control tests): sizes, rates and
// the lines of `tc -d class show`.

/** tc's sizes: '1600b', '15Kb', '2Mb' (K = 1024). */
export function tcSize(s: string): number {
  const k = s.endsWith('Kb') ? 1024 : s.endsWith('Mb') ? 1024 * 1024 : 1;
  return Number(s.replace(/[KM]?b$/, '')) * k;
}

/** tc's rates: '10Mbit', '64Kbit', '40Gbit' (powers of 1000). */
export function tcRate(s: string): number {
  const k = { K: 1e3, M: 1e6, G: 1e9 }[s.slice(-4, -3)] ?? 1;
  return Number(s.replace(/[KMG]?bit$/, '')) * k;
}

/** One line of `tc -d class show` as its words: `get('rate')` is the word after 'rate'. */
export interface TcClassLine {
  kind: string;
  classid: string;
  /** 'root' or the parent class. */
  parent: string;
  get(key: string): string | undefined;
}

/** Parses `tc [-d] class show` output. */
export function tcClassLines(text: string): TcClassLine[] {
  return text
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('class '))
    .map((line) => {
      const w = line.trim().split(/\s+/);
      const get = (k: string): string | undefined => (w.includes(k) ? w[w.indexOf(k) + 1] : undefined);
      return { kind: w[1]!, classid: w[2]!, parent: w[3] === 'root' ? 'root' : get('parent')!, get };
    });
}
