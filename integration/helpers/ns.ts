// Network namespaces for integration tests, made with the lab kit (@vmhost/lab) like every other
// namespace of the project: recorded with this process as owner (pid + start time) before they
// are made, removed after the test (`t.after`, also when it fails), at process exit, or by the
// sweep of scripts/run-tests.mjs once their process is gone (never while it lives: test runs go
// on in parallel on this machine). Plus `sh` and `ipJson`, the independent oracle.
import type { TestContext } from 'node:test';
import { bareNamespace } from '@vmhost/lab';
import { netns } from '@vmhost/net';

/**
 * The prefix of every namespace the integration tests make: bare ones `vmhl-ns-<id>-<tag>`
 * (below), labs `vmhl-<suite>-<id>-<name>`. scripts/run-tests.mjs sweeps it (integration/helpers/sweep.ts).
 */
export const TEST_PREFIX = 'vmhl-';

/** The prefix of the bare namespaces of {@link freshNetns} and {@link reserveNetns}. */
export const BARE_PREFIX = `${TEST_PREFIX}ns-`;

/** A fresh bare namespace (only `lo`, down), removed with what runs inside it when the test ends. */
export async function freshNetns(t: TestContext, tag: string): Promise<string> {
  return (await bareNamespace({ prefix: BARE_PREFIX, tag, test: t })).name;
}

/**
 * A namespace name owned by this test but not created: for code under test that creates it
 * itself (netns.add, a README example). Removed, if it then exists, when the test ends.
 */
export async function reserveNetns(t: TestContext, tag: string): Promise<string> {
  return (await bareNamespace({ prefix: BARE_PREFIX, tag, create: false, test: t })).name;
}

/** Runs a command inside `name` and returns its stdout; throws with stderr on a non-zero exit. */
export async function sh(name: string, cmd: string, args: string[], input?: string): Promise<string> {
  const r = await netns.run(name, cmd, args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${name}) exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** `ip -j ARGS` inside `name`, parsed: the independent oracle. */
export async function ipJson<T = unknown>(name: string, args: string[]): Promise<T> {
  const out = await sh(name, 'ip', ['-j', ...args]);
  return JSON.parse(out.trim() || '[]') as T;
}
