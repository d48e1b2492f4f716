/**
 * One bare network namespace for a test (only `lo`, down; no sysctl changed), owned and swept
 * exactly like a lab's namespaces: recorded in `LAB_OWNER_DIR` before it is made, removed by
 * {@link BareNamespace.remove} (after killing what runs inside), at process exit, or by the sweep
 * of its prefix once this process is gone.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { netns, ValidationError } from '@vmhost/net';
import { LabCloseError } from './errors.js';
import { trackOpen } from './exit.js';
import { claimOwner, releaseOwner, removeNamespace, removeNamespaceSync, sweepNamespaces, validatePrefix } from './ownership.js';
import { DEFAULT_LAB_PREFIX, LAB_NAME_MAX } from './types.js';

/** Options of {@link bareNamespace}. */
export interface BareNamespaceOptions {
  /**
   * Prefix of the name (`${prefix}${id}-${tag}`); default {@link DEFAULT_LAB_PREFIX}. Reserved as
   * for labs: a namespace with it whose owner is gone is swept.
   */
  prefix?: string;
  /** A word in the name, e.g. what the test is about: [A-Za-z0-9_-]. Default `ns`. */
  tag?: string;
  /**
   * Create the namespace. Default true. With false only the name is recorded as this process's,
   * for a namespace something else will create (a child process, a program under test): no sweep
   * removes it while this process lives, and {@link BareNamespace.remove} deletes it if it exists.
   */
  create?: boolean;
  /**
   * A test context (node:test's `t`, or anything with `after(fn)`): {@link BareNamespace.remove}
   * is registered with it, so the namespace goes when the test ends, also after a failure.
   */
  test?: {
    /** Registers `fn` to run when the test ends. */
    after(fn: () => Promise<void>): void;
  };
  /** Run the sweep of the prefix first. Default false. */
  sweep?: boolean;
  /** Remove the namespace synchronously at a normal process exit if still there. Default true. */
  cleanupOnExit?: boolean;
}

/** A namespace made (or reserved) by {@link bareNamespace}. */
export class BareNamespace {
  /** The real namespace name, for any other API (`netns.spawn`, `Rtnl.open({ netns })`, ...). */
  readonly name: string;
  #removing: Promise<void> | undefined;

  /** @internal */
  constructor(name: string) {
    this.name = name;
  }

  /**
   * Kills (SIGKILL, by pid) every process inside, deletes the namespace if it exists and drops
   * its owner record. Idempotent: later calls return the same promise.
   * @throws {LabCloseError} when a process survives (the namespace is deleted all the same).
   */
  remove(): Promise<void> {
    this.#removing ??= (async () => {
      trackOpen(this, false);
      try {
        await removeNamespace(this.name);
      } catch (err) {
        throw new LabCloseError([err]);
      }
    })();
    return this.#removing;
  }

  /** `await using ns = await bareNamespace(...)`: same as {@link remove}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.remove();
  }

  /**
   * Synchronous best-effort removal, for the process 'exit' hook.
   * @internal
   */
  closeSync(): void {
    if (this.#removing) return;
    this.#removing = Promise.resolve();
    trackOpen(this, false);
    removeNamespaceSync(this.name);
  }
}

/**
 * Makes one bare network namespace for a test, named `${prefix}${id}-${tag}` (`id` 6 random hex
 * digits), owned by this process like a lab's namespaces; or, with `create: false`, only reserves
 * the name.
 *
 * ```ts
 * test('my link code', async (t) => {
 *   const { name } = await bareNamespace({ prefix: 'myapp-test-', tag: 'links', test: t });
 *   // ... Rtnl.open({ netns: name }) ...
 * }); // removed when the test ends
 * ```
 * @throws {ValidationError} for a bad prefix or tag (nothing made).
 */
export async function bareNamespace(options: BareNamespaceOptions = {}): Promise<BareNamespace> {
  const prefix = options.prefix ?? DEFAULT_LAB_PREFIX;
  validatePrefix(prefix);
  const tag = options.tag ?? 'ns';
  if (typeof tag !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(tag)) throw new ValidationError('tag', tag, 'expected 1-32 characters from [A-Za-z0-9_-]');
  const name = `${prefix}${randomBytes(3).toString('hex')}-${tag}`;
  if (name.length > LAB_NAME_MAX) throw new ValidationError('tag', tag, `the namespace name '${name}' would be longer than ${LAB_NAME_MAX}`);
  if (options.sweep) await sweepNamespaces(prefix);
  claimOwner(name);
  const ns = new BareNamespace(name);
  if (options.create ?? true) {
    try {
      await netns.add(name);
    } catch (err) {
      releaseOwner(name);
      throw err;
    }
  }
  if (options.cleanupOnExit ?? true) trackOpen(ns, true);
  options.test?.after(() => ns.remove());
  return ns;
}
