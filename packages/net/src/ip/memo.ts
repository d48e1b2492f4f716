/**
 * The texts parsed lately (addresses, prefixes) with what they parsed to: a host's addresses are
 * parsed many times over in one run, each forward, rule and port naming its VM's. Bounded: cleared
 * when full. Only successes are kept. Internal to the ip module.
 * @module
 */
export class ParseMemo<T> {
  private readonly m = new Map<string, T>();

  constructor(private readonly max = 8192) {}

  get(text: unknown): T | undefined {
    return typeof text === 'string' ? this.m.get(text) : undefined;
  }

  set(text: string, value: T): void {
    if (this.m.size >= this.max) this.m.clear();
    this.m.set(text, value);
  }
}
