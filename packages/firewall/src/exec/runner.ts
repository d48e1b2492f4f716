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
import { existsSync, readFileSync } from 'node:fs';
import { netns, type NetnsRef } from '@vmhost/net';
import type { TableFamily } from '../model.js';

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
  /**
   * Resolves true once the program has read and processed all the input written so far and waits
   * for more (blocked reading its standard input), false if it exited instead. Optional: a starter
   * without it (or whose programs' state cannot be observed) makes apply run `--test` instead.
   * See {@link parkedState}.
   */
  parked?(): Promise<boolean>;
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

/**
 * The program names per family. ebtables is named by its nf_tables variant: this kernel has no
 * legacy ebtables, and `ebtables-restore` may be switched to the legacy one by the alternatives.
 */
export function programs(family: TableFamily): { save: string; restore: string } {
  if (family === 'bridge') return { save: 'ebtables-nft-save', restore: 'ebtables-nft-restore' };
  return family === 4 ? { save: 'iptables-save', restore: 'iptables-restore' } : { save: 'ip6tables-save', restore: 'ip6tables-restore' };
}

/** The number of the read(2) system call, on the architectures where it is known. */
const READ_SYSCALL: Partial<Record<string, number>> = { x64: 0, arm64: 63 };
let syscallFile: boolean | undefined;

/** Whether {@link parkedState} can tell anything here (a known architecture, `/proc/PID/syscall` present). */
export function canObservePrograms(): boolean {
  syscallFile ??= existsSync('/proc/self/syscall');
  return syscallFile && READ_SYSCALL[process.arch] !== undefined;
}

/**
 * What `/proc/PID/syscall` says about a program: `'parked'` when it is blocked in read(2) on its
 * standard input (fd 0), `'busy'` when it runs or waits on something else, `'gone'` when the file
 * cannot be read (the program exited), `'unknown'` on an architecture or kernel where this cannot
 * be told. The kernel reports a system call only for a task that is off the CPU and stays in it
 * (task_current_syscall), and a pipe write wakes its reader before write(2) returns, so "parked"
 * read after our last write completed means every byte written has been read, and the lines
 * before it processed (the restore programs read with stdio and handle line by line).
 */
export function parkedState(pid: number): 'parked' | 'busy' | 'gone' | 'unknown' {
  const nr = READ_SYSCALL[process.arch];
  if (nr === undefined || !canObservePrograms()) return 'unknown';
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/syscall`, 'latin1');
  } catch {
    return 'gone';
  }
  const [call, fd] = text.split(' ', 2);
  return call === String(nr) && fd === '0x0' ? 'parked' : 'busy';
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
    // resolves when everything written so far has been handed to the pipe
    let flushed: Promise<void> = Promise.resolve();
    const observable = child.pid !== undefined && canObservePrograms();
    const program: StartedProgram = {
      pid: child.pid,
      write(text) {
        if (!exitedAlready && child.stdin?.writable) {
          flushed = new Promise((resolve) => child.stdin?.write(text, () => resolve()));
        }
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
    if (observable) {
      program.parked = async () => {
        await flushed;
        const pid = child.pid as number;
        const gone = exited.then(() => undefined, () => undefined);
        for (;;) {
          if (exitedAlready) return false;
          const st = parkedState(pid);
          if (st === 'parked') return true;
          if (st === 'gone') {
            await gone;
            return false;
          }
          // poll every millisecond (a read of /proc/PID/syscall costs microseconds), or until it exits
          await Promise.race([gone, new Promise((r) => setTimeout(r, 1))]);
        }
      };
    }
    return program;
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
