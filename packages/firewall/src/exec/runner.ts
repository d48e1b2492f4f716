/**
 * The transport: runs iptables-save / iptables-restore (and the ip6tables ones) with an argument
 * array and the batch on standard input, inside a network namespace through @vmhost/net's
 * `netns.run`, or in the caller's namespace with a plain spawn. Never a shell.
 * @module
 */
import { spawn } from 'node:child_process';
import { netns, type NetnsRef } from '@vmhost/net';
import type { Family } from '../model.js';

/** What a {@link Runner} returns. */
export interface RunOutput {
  /** Exit status, or null when the program was killed by a signal. */
  code: number | null;
  /** The signal that killed the program, if any. */
  signal?: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs one program to completion with `input` on its standard input. The default runs the real
 * program; pass your own to trace or to inject failures (tests do).
 */
export type Runner = (command: string, args: readonly string[], input: string) => Promise<RunOutput>;

/** Options shared by the functions that read or change rules. */
export interface ExecOptions {
  /** The network namespace to work in. Default: the caller's own. */
  netns?: NetnsRef;
  /** Kill a program that runs longer than this (ms). Default 60000. */
  timeoutMs?: number;
  /** Replaces the program runner (tracing, fault injection). */
  runner?: Runner;
}

/** The program names per family. */
export function programs(family: Family): { save: string; restore: string } {
  return family === 4 ? { save: 'iptables-save', restore: 'iptables-restore' } : { save: 'ip6tables-save', restore: 'ip6tables-restore' };
}

/** The runner used when none is given: `netns.run` with a namespace, `child_process.spawn` without. */
export function defaultRunner(options: Pick<ExecOptions, 'netns' | 'timeoutMs'> = {}): Runner {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const ref = options.netns;
  return async (command, args, input) => {
    if (ref !== undefined) {
      const r = await netns.run(ref, command, args, { input, timeoutMs });
      return { code: r.code, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
    }
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], shell: false });
    const r = await netns.collect(child, { input, timeoutMs });
    return { code: r.code, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  };
}

/** The runner for `options`. */
export function runnerFor(options: ExecOptions): Runner {
  return options.runner ?? defaultRunner(options);
}
