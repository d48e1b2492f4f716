/**
 * The transport: runs iptables-save / iptables-restore (and the ip6tables ones) with an argument
 * array and the batch on standard input, inside a network namespace through @vmhost/net's
 * `netns.spawn`, or in the caller's namespace with a plain spawn. Never a shell.
 *
 * Two shapes: a {@link Starter} starts a program and lets the caller write its input in parts
 * (apply uses it to hold back a batch's `COMMIT` line while `--test` runs, see
 * docs/firewall-atomic-apply.md); a {@link Runner} runs a program to completion with its whole input.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { netns, type NetnsRef } from '@vmhost/net';
import type { Family } from '../model.js';

/** What a program run gave. */
export interface RunOutput {
  /** Exit status, or null when the program was killed by a signal. */
  code: number | null;
  /** The signal that killed the program, if any. */
  signal?: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs one program to completion with `input` on its standard input. Pass your own (option
 * `runner`) to trace or to inject failures; see {@link starterFromRunner} for how apply uses it.
 */
export type Runner = (command: string, args: readonly string[], input: string) => Promise<RunOutput>;

/** A program started with its standard input open: the input is written in parts. */
export interface StartedProgram {
  /** The process id, when a real process was started. */
  readonly pid: number | undefined;
  /** Writes more input (ignored once the program has exited). */
  write(text: string): void;
  /** Writes `text`, closes the input and resolves with the outcome once the program has exited. */
  end(text?: string): Promise<RunOutput>;
  /**
   * Kills the program (SIGKILL, by its pid) unless it has exited already, and resolves with the
   * outcome once it has. The input is never closed normally, so a program that reads to a
   * terminator (iptables-restore's `COMMIT`) never sees one.
   */
  kill(): Promise<RunOutput>;
}

/**
 * Starts one program (`command` with `args`, no shell). Rejections (the program could not be
 * started) surface from {@link StartedProgram.end} / {@link StartedProgram.kill}. Pass your own
 * (option `starter`) to trace or to inject failures.
 */
export type Starter = (command: string, args: readonly string[]) => StartedProgram;

/** Options shared by the functions that read or change rules. */
export interface ExecOptions {
  /** The network namespace to work in. Default: the caller's own. */
  netns?: NetnsRef;
  /** Kill a program that runs longer than this (ms). Default 60000. */
  timeoutMs?: number;
  /**
   * Replaces the program runner (tracing, fault injection). A runner only sees whole inputs, so
   * with a runner a committing iptables-restore starts only once its whole batch (COMMIT
   * included) is known, after `--test`: the pipelining of {@link ExecOptions.starter} is lost.
   */
  runner?: Runner;
  /** Replaces the program starter (tracing, fault injection); wins over `runner`. */
  starter?: Starter;
}

/** The program names per family. */
export function programs(family: Family): { save: string; restore: string } {
  return family === 4 ? { save: 'iptables-save', restore: 'iptables-restore' } : { save: 'ip6tables-save', restore: 'ip6tables-restore' };
}

/**
 * The starter used when none is given: `netns.spawn` with a namespace, `child_process.spawn`
 * without; every program is killed (SIGKILL) after `timeoutMs` (default 60000).
 */
export function defaultStarter(options: Pick<ExecOptions, 'netns' | 'timeoutMs'> = {}): Starter {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const ref = options.netns;
  return (command, args) => {
    let child: ChildProcess;
    try {
      child = ref !== undefined
        ? netns.spawn(ref, command, args, { stdio: ['pipe', 'pipe', 'pipe'] })
        : spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], shell: false });
    } catch (err) {
      const failed = Promise.reject(err);
      failed.catch(() => undefined);
      return { pid: undefined, write: () => undefined, end: () => failed, kill: () => failed };
    }
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => errOut.push(d));
    child.stdin?.on('error', () => {
      /* the program may exit before it reads all of its input; its exit status tells */
    });
    let exitedAlready = false;
    const exited = new Promise<RunOutput>((resolve, reject) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        exitedAlready = true;
        reject(e);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        exitedAlready = true;
        resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(errOut).toString() });
      });
    });
    exited.catch(() => undefined);
    return {
      pid: child.pid,
      write(text) {
        if (!exitedAlready && child.stdin?.writable) child.stdin.write(text);
      },
      end(text = '') {
        if (!exitedAlready && child.stdin?.writable) child.stdin.end(text);
        return exited;
      },
      kill() {
        if (!exitedAlready && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        return exited;
      },
    };
  };
}

/**
 * A starter on top of a {@link Runner}: the input is collected and the runner is called with all
 * of it at {@link StartedProgram.end}; {@link StartedProgram.kill} never calls the runner (the
 * program is reported killed by SIGKILL).
 */
export function starterFromRunner(runner: Runner): Starter {
  return (command, args) => {
    const parts: string[] = [];
    let result: Promise<RunOutput> | undefined;
    return {
      pid: undefined,
      write(text) {
        if (!result) parts.push(text);
      },
      end(text = '') {
        if (!result) {
          parts.push(text);
          result = runner(command, args, parts.join(''));
        }
        return result;
      },
      kill() {
        result ??= Promise.resolve({ code: null, signal: 'SIGKILL', stdout: '', stderr: '' });
        return result;
      },
    };
  };
}

/** The runner used when none is given: a {@link defaultStarter} program given its whole input. */
export function defaultRunner(options: Pick<ExecOptions, 'netns' | 'timeoutMs'> = {}): Runner {
  const start = defaultStarter(options);
  return (command, args, input) => start(command, args).end(input);
}

/** The runner for `options` (whole inputs only). */
export function runnerFor(options: ExecOptions): Runner {
  if (options.starter) {
    const start = options.starter;
    return (command, args, input) => start(command, args).end(input);
  }
  return options.runner ?? defaultRunner(options);
}

/** The starter for `options`: `starter`, else one on top of `runner`, else {@link defaultStarter}. */
export function starterFor(options: ExecOptions): Starter {
  return options.starter ?? (options.runner ? starterFromRunner(options.runner) : defaultStarter(options));
}
