/**
 * The testable part of the `vmhost` command line: argument parsing, help, output formatting and
 * exit codes. The entry point (`cli.ts`) only wires {@link main} to the process. The engine is
 * reached through {@link CliDeps}, so tests run the whole CLI against fakes.
 *
 * Exit codes: 0 success; 1 error; 2 usage error (and `plan --detailed-exitcode` with changes
 * pending); 3 invalid host file; 4 apply/down failed and undoing failed too (host half-applied).
 * @module
 */
import { readFileSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { ValidationError } from '@vmhost/net';
import { HostApplyError, HostSpecError } from '../errors.js';
import type { HostOptions, HostStatus, Plan, ProgressEvent, Report, ResolvedHost, Step, StepAction } from '../types.js';

// ------------------------------------------------------------------------------------ contract

/** Where the CLI writes. Each call prints one line (the entry point adds the newline). */
export interface CliIO {
  /** A line of normal output (stdout). */
  out(s: string): void;
  /** A line of diagnostics: progress, errors, usage (stderr). */
  err(s: string): void;
  /** Whether the output is a terminal: allows colours (unless `NO_COLOR` is set). */
  isTTY?: boolean;
}

/** The engine functions the CLI calls; {@link defaultDeps} loads the real ones. */
export interface CliDeps {
  /** Reads and validates a host file; throws `HostSpecError` (with `.problems`) when it is invalid. */
  loadHostFile(path: string): Promise<ResolvedHost>;
  /** The steps `apply` would carry out. */
  plan(host: ResolvedHost, options?: HostOptions): Promise<Plan>;
  /** Makes the host match the spec; throws `HostApplyError` after undoing what it did. */
  apply(host: ResolvedHost, options?: HostOptions): Promise<Report>;
  /** Tears down what apply made. */
  down(host: ResolvedHost, options?: HostOptions): Promise<Report>;
  /** What is there now. */
  status(host: ResolvedHost, options?: HostOptions): Promise<HostStatus>;
  /** Starts one VM. */
  startVm(host: ResolvedHost, name: string, options?: HostOptions): Promise<void>;
  /** Stops one VM; `step` is the rung of the shutdown ladder that ended it. */
  stopVm(host: ResolvedHost, name: string, options?: HostOptions & { timeoutMs?: number }): Promise<{ step: string; ms: number }>;
  /** Freezes a VM's disk and continues on a new overlay. */
  snapshotVm(host: ResolvedHost, name: string, options?: HostOptions & { overlay?: string }): Promise<{ frozen: string; overlay: string }>;
  /** The VM's serial console log file (the real one is synchronous; the lazy loader is not). */
  consoleFile(host: ResolvedHost, name: string, options?: HostOptions): string | Promise<string>;
  /** The self-contained demo; true when every check passed. */
  runDemo(options?: { keep?: boolean; json?: boolean; out?: (line: string) => void }): Promise<boolean>;
}

/** The real engine, loaded on first use (so `--help` and usage errors never load it). */
export const defaultDeps: CliDeps = {
  loadHostFile: async (path) => (await import('../spec/parse.js')).loadHostFile(path),
  plan: async (host, options) => (await import('../engine/run.js')).plan(host, options),
  apply: async (host, options) => (await import('../engine/run.js')).apply(host, options),
  down: async (host, options) => (await import('../engine/run.js')).down(host, options),
  status: async (host, options) => (await import('../engine/status.js')).status(host, options),
  startVm: async (host, name, options) => (await import('../engine/vm-ops.js')).startVm(host, name, options),
  stopVm: async (host, name, options) => (await import('../engine/vm-ops.js')).stopVm(host, name, options),
  snapshotVm: async (host, name, options) => (await import('../engine/vm-ops.js')).snapshotVm(host, name, options),
  consoleFile: async (host, name, options) => (await import('../engine/vm-ops.js')).consoleFile(host, name, options),
  runDemo: async (options) => (await import('../demo/demo.js')).runDemo(options),
};

/** Exit codes of `vmhost`. */
export const EXIT = {
  ok: 0,
  error: 1,
  /** Usage error; also `plan --detailed-exitcode` when changes are pending. */
  usage: 2,
  changes: 2,
  /** The host file is invalid. */
  spec: 3,
  /** Apply/down failed and undoing failed too: the host may be half-applied. */
  undoFailed: 4,
} as const;

// ------------------------------------------------------------------------------------- options

type OptDef = { type: 'string' | 'boolean'; short?: string };

const GLOBAL_OPTS = {
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  netns: { type: 'string' },
  'state-dir': { type: 'string' },
} satisfies Record<string, OptDef>;

interface CommandDef {
  /** `plan`, `vm stop`, ... */
  name: string;
  /** The usage line after `vmhost `. */
  usage: string;
  summary: string;
  /** Options of this command besides the global ones. */
  options: Record<string, OptDef>;
  /** Names of the positional arguments (all required). */
  args: string[];
  /** Whether --netns/--state-dir apply. */
  hostOptions: boolean;
  help: string;
}

const FILE_OPT: Record<string, OptDef> = { file: { type: 'string', short: 'f' } };

const GLOBAL_HELP = `Global options:
  --netns NAME      Act inside network namespace NAME (or an nsfs path such as /proc/PID/ns/net)
  --state-dir DIR   State directory (default /run/vmhost/<name>, /run/vmhost/<netns>/<name> with --netns)
  --json            Machine-readable output: JSON on stdout
  --debug           Print stack traces of errors (also VMHOST_DEBUG=1)
  -h, --help        Show help`;

const VM_FILE_HELP = `  -f, --file FILE   The host file (default: $VMHOST_FILE, else ./vmhost.yaml)`;

const COMMANDS: Record<string, CommandDef> = {
  plan: {
    name: 'plan',
    usage: 'plan [options] <file>',
    summary: 'Show the steps apply would carry out',
    options: { 'detailed-exitcode': { type: 'boolean' } },
    args: ['file'],
    hostOptions: true,
    help: `Compares the host with the host file and prints the steps apply would carry out:
  + create   ~ update/set   - delete   > start   < stop   * restart
Prints "No changes." when the host already matches. Changes nothing.

Options:
  --detailed-exitcode   Exit 0 when there are no changes, 2 when changes are pending, 1 on error

Examples:
  vmhost plan host.yaml
  vmhost plan host.yaml --detailed-exitcode || echo "host differs from host.yaml"
  vmhost --netns lab plan host.yaml --json`,
  },
  apply: {
    name: 'apply',
    usage: 'apply [options] <file>',
    summary: 'Make the host match the file (undone again on failure)',
    options: {},
    args: ['file'],
    hostOptions: true,
    help: `Carries out the plan step by step, with progress on stderr ("[3/12] create bridge br0 ... done (12 ms)").
When a step fails, the steps already done are undone in reverse order; the command prints the failing
step, the error and what was undone, and exits 1. If undoing fails too, the host may be half-applied:
exit 4.

Examples:
  sudo vmhost apply host.yaml
  sudo vmhost apply host.yaml --json > report.json
  sudo vmhost --netns lab --state-dir /tmp/lab-state apply host.yaml`,
  },
  down: {
    name: 'down',
    usage: 'down [options] <file>',
    summary: 'Tear down everything the file made',
    options: {},
    args: ['file'],
    hostOptions: true,
    help: `Stops the VMs, dnsmasq and the IPv6 proxy, removes firewall rules, addresses, routes and links
that apply made. Progress on stderr as for apply.

Examples:
  sudo vmhost down host.yaml
  sudo vmhost --netns lab down host.yaml --json`,
  },
  status: {
    name: 'status',
    usage: 'status [options] <file>',
    summary: 'Show links, VMs, forwards, IPv6, dnsmasq and leases',
    options: {},
    args: ['file'],
    hostOptions: true,
    help: `Prints tables of the links (bridge, uplink), the VMs (running, QMP status, pid), the published
ports, the IPv6 mode with proxy neighbours and routes, dnsmasq and the DHCP leases.
With --json prints the status object.

Examples:
  vmhost status host.yaml
  vmhost status host.yaml --json | jq '.vms[] | select(.running | not) | .name'`,
  },
  'vm start': {
    name: 'vm start',
    usage: 'vm start [options] <name>',
    summary: 'Start one VM',
    options: { ...FILE_OPT },
    args: ['name'],
    hostOptions: true,
    help: `Starts the VM <name> of the host file (its TAP and the host must be applied).

Options:
${VM_FILE_HELP}

Examples:
  sudo vmhost vm start web
  sudo vmhost vm start web -f /etc/vmhost/host.yaml`,
  },
  'vm stop': {
    name: 'vm stop',
    usage: 'vm stop [options] <name>',
    summary: 'Stop one VM (powerdown, quit, SIGTERM, SIGKILL)',
    options: { ...FILE_OPT, timeout: { type: 'string' } },
    args: ['name'],
    hostOptions: true,
    help: `Stops the VM <name> by the shutdown ladder: ACPI powerdown, then QMP quit, SIGTERM, SIGKILL.
Prints the step that ended it (powerdown, quit, sigterm, sigkill or not-running).

Options:
${VM_FILE_HELP}
  --timeout SECONDS How long the guest may take to power down before QEMU is told to quit

Examples:
  sudo vmhost vm stop web
  sudo vmhost vm stop web --timeout 5 -f host.yaml`,
  },
  'vm console': {
    name: 'vm console',
    usage: 'vm console [options] <name>',
    summary: "Print a VM's serial console log (--follow to tail it)",
    options: { ...FILE_OPT, follow: { type: 'boolean' } },
    args: ['name'],
    hostOptions: true,
    help: `Prints the serial console log of the VM <name>. With --follow keeps printing what the guest
writes until Ctrl-C (like tail -f).

Options:
${VM_FILE_HELP}
  --follow          Keep printing new output until interrupted

Examples:
  vmhost vm console web
  vmhost vm console web --follow
  VMHOST_FILE=host.yaml vmhost vm console db | grep -i error`,
  },
  'vm snapshot': {
    name: 'vm snapshot',
    usage: 'vm snapshot [options] <name>',
    summary: "Freeze a VM's disk and continue on a new overlay",
    options: { ...FILE_OPT, overlay: { type: 'string' } },
    args: ['name'],
    hostOptions: true,
    help: `Takes a live snapshot of the VM <name>: its current disk is frozen and the VM continues on a new
overlay file. Prints the overlay made and the frozen file.

Options:
${VM_FILE_HELP}
  --overlay PATH    Where to create the overlay (default: chosen by vmhost next to the disk)

Examples:
  sudo vmhost vm snapshot web
  sudo vmhost vm snapshot web --overlay /var/lib/vm/web-2024-05-01.qcow2`,
  },
  demo: {
    name: 'demo',
    usage: 'demo [--keep] [--json]',
    summary: 'Run the self-contained demo in throwaway namespaces',
    options: { keep: { type: 'boolean' } },
    args: [],
    hostOptions: false,
    help: `Builds a whole VM host inside throwaway network namespaces, checks it and tears it down.
Exits 0 when every check passed, 1 otherwise. Needs root.

Options:
  --keep            Leave the namespaces and processes in place for inspection
  --json            Print the results as JSON

Examples:
  sudo vmhost demo
  sudo vmhost demo --keep --json`,
  },
};

const VM_SUBCOMMANDS = ['start', 'stop', 'console', 'snapshot'];

/** Every option of every command, for the first pass that only finds the command words. */
const ALL_OPTS: Record<string, OptDef> = { ...GLOBAL_OPTS, version: { type: 'boolean' } };
for (const c of Object.values(COMMANDS)) Object.assign(ALL_OPTS, c.options);

/** The package version (from packages/host/package.json; src/cli/ and dist/cli/ are both two levels down). */
export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The general help text. */
export function generalHelp(): string {
  const rows = Object.values(COMMANDS).map((c) => [`  ${c.name} ${c.args.map((a) => `<${a}>`).join(' ')}`.trimEnd(), c.summary]);
  rows.push(['  help [command]', 'Show help for a command']);
  return `vmhost: a VM host's networking and VMs from one declarative file

Usage: vmhost [global options] <command> [options] [args]

Commands:
${formatTable(null, rows)}

${GLOBAL_HELP}
  --version         Show the version

Exit codes:
  0 success, 1 error, 2 usage error (plan --detailed-exitcode: changes pending),
  3 invalid host file, 4 apply failed and undoing failed too (host may be half-applied)

Environment:
  VMHOST_FILE       Host file of the vm commands when -f is not given (default ./vmhost.yaml)
  VMHOST_DEBUG=1    Print stack traces of errors
  NO_COLOR          No colours even on a terminal

Examples:
  vmhost plan host.yaml
  sudo vmhost apply host.yaml
  sudo vmhost --netns lab status host.yaml --json
  sudo vmhost vm stop web -f host.yaml
  vmhost vm console web --follow
  vmhost help apply`;
}

/** Help of one command (`plan`, `vm stop`, ...), or of the `vm` group. */
export function commandHelp(name: string): string | undefined {
  if (name === 'vm') {
    const rows = VM_SUBCOMMANDS.map((s) => {
      const c = COMMANDS[`vm ${s}`]!;
      return [`  ${c.name} <name>`, c.summary];
    });
    return `Usage: vmhost vm <start|stop|console|snapshot> [options] <name>

Commands on one VM of the host file:
${formatTable(null, rows)}

Options:
${VM_FILE_HELP}

${GLOBAL_HELP}

Examples:
  sudo vmhost vm start web -f host.yaml
  sudo vmhost vm stop web
  vmhost vm console web --follow
  sudo vmhost vm snapshot web --overlay /var/lib/vm/web-snap.qcow2

Run 'vmhost vm <command> --help' for the options of each.`;
  }
  const c = COMMANDS[name];
  if (!c) return undefined;
  return `Usage: vmhost ${c.usage}

${c.summary}.

${c.help}

${c.hostOptions ? GLOBAL_HELP : GLOBAL_HELP.split('\n').filter((l) => !/--netns|--state-dir/.test(l)).join('\n')}`;
}

class UsageError extends Error {
  constructor(message: string, readonly command?: string) {
    super(message);
  }
}

interface Parsed {
  command: CommandDef;
  values: Record<string, string | boolean | undefined>;
  args: string[];
}

type ParseResult = { kind: 'help'; text: string } | { kind: 'version' } | { kind: 'run'; parsed: Parsed };

function parseCommandLine(argv: string[]): ParseResult {
  // First pass: find the command words, knowing which options take a value.
  let pre;
  try {
    pre = parseArgs({ args: argv, options: ALL_OPTS, strict: false, allowPositionals: true });
  } catch (e) {
    throw new UsageError(cleanParseMessage(e));
  }
  const words = pre.positionals;
  const first = words[0];
  if (first === undefined) {
    if (pre.values.help === true) return { kind: 'help', text: generalHelp() };
    if (pre.values.version === true && argv.length === 1) return { kind: 'version' };
    if (pre.values.version === true) throw new UsageError('--version takes no other arguments');
    throw new UsageError('missing command');
  }
  if (first === 'help') {
    const topic = words.slice(1).join(' ');
    if (!topic) return { kind: 'help', text: generalHelp() };
    const text = commandHelp(topic);
    if (text === undefined) throw new UsageError(`no help for unknown command '${topic}'`);
    return { kind: 'help', text };
  }
  let key = first;
  if (first === 'vm') {
    const sub = words[1];
    if (sub === undefined) {
      if (pre.values.help === true) return { kind: 'help', text: commandHelp('vm')! };
      throw new UsageError('missing vm command: start, stop, console or snapshot', 'vm');
    }
    if (!VM_SUBCOMMANDS.includes(sub)) throw new UsageError(`unknown vm command '${sub}' (expected start, stop, console or snapshot)`, 'vm');
    key = `vm ${sub}`;
  }
  const command = COMMANDS[key];
  if (!command) throw new UsageError(`unknown command '${first}'`);

  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...GLOBAL_OPTS, ...command.options }, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError(cleanParseMessage(e), command.name);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help === true) return { kind: 'help', text: commandHelp(command.name)! };
  const args = parsed.positionals.slice(command.name.split(' ').length);
  if (args.length < command.args.length) {
    throw new UsageError(`missing ${command.args.slice(args.length).map((a) => `<${a}>`).join(' ')}`, command.name);
  }
  if (args.length > command.args.length) throw new UsageError(`unexpected argument '${args[command.args.length]!}'`, command.name);
  if (!command.hostOptions) {
    for (const o of ['netns', 'state-dir']) if (values[o] !== undefined) throw new UsageError(`--${o} is not used by ${command.name}`, command.name);
  }
  for (const [k, v] of Object.entries(values)) {
    if (typeof v === 'string' && v === '') throw new UsageError(`--${k} needs a non-empty value`, command.name);
  }
  if (typeof values.timeout === 'string') {
    const sec = Number(values.timeout);
    if (!/^\d+(\.\d+)?$/.test(values.timeout) || !Number.isFinite(sec)) {
      throw new UsageError(`--timeout: expected a number of seconds, got '${values.timeout}'`, command.name);
    }
  }
  return { kind: 'run', parsed: { command, values, args } };
}

function cleanParseMessage(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  // Node adds a hint about '--' to unknown options; keep the first sentence.
  return msg.replace(/\. To specify a positional argument.*$/s, '');
}

// ------------------------------------------------------------------------------------ formatting

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

type Colour = 'red' | 'green' | 'yellow' | 'cyan' | 'bold' | 'dim';
const COLOURS: Record<Colour, string> = { red: '31', green: '32', yellow: '33', cyan: '36', bold: '1', dim: '2' };

function painter(enabled: boolean): (s: string, c: Colour) => string {
  return enabled ? (s, c) => `\x1b[${COLOURS[c]}m${s}\x1b[0m` : (s) => s;
}

/** `12 ms` or `1.3 s`. */
export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The plan symbol of an action (`+` create, `~` update/set, `-` delete, `>` start, `<` stop, `*` restart). */
export function actionSymbol(action: StepAction): string {
  switch (action) {
    case 'create':
      return '+';
    case 'update':
    case 'set':
      return '~';
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

function actionColour(action: StepAction): Colour {
  return action === 'create' || action === 'start' ? 'green' : action === 'delete' || action === 'stop' ? 'red' : 'yellow';
}

function formatPort(p: number | readonly [number, number]): string {
  return typeof p === 'number' ? String(p) : `${p[0]}-${p[1]}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * One line about an error: its message, prefixed with its `code` (errno name such as `EEXIST`)
 * when the message does not already say it, and the kernel's extended-ack message when present.
 */
export function describeError(e: unknown): string {
  if (!(e instanceof Error)) {
    if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') return (e as { message: string }).message;
    return String(e);
  }
  let msg = e.message || e.name;
  const { code, extack } = e as { code?: unknown; extack?: unknown };
  if (typeof code === 'string' && code !== '' && !msg.includes(code)) msg = `${code}: ${msg}`;
  if (typeof extack === 'string' && extack !== '' && !msg.includes(extack)) msg += ` (kernel: ${extack})`;
  return msg.replace(/\s*\n\s*/g, ' ');
}

function errorName(e: unknown): string {
  return e instanceof Error ? e.name : typeof e;
}

// ------------------------------------------------------------------------------------ errors

function stepJson(s: Step): Step {
  return { id: s.id, action: s.action, description: s.description };
}

// ------------------------------------------------------------------------------------ main

interface Ctx {
  io: CliIO;
  deps: CliDeps;
  json: boolean;
  debug: boolean;
  paint: (s: string, c: Colour) => string;
  options: HostOptions;
  /** The progress of the running apply/down (numbers the failing step). */
  progress?: ProgressPrinter;
}

/**
 * Runs `vmhost` with `argv` (without node and the script) and returns the exit code.
 * @param io Where output goes; each call is one line.
 * @param deps The engine; tests pass fakes.
 */
export async function main(argv: string[], io: CliIO, deps: CliDeps = defaultDeps): Promise<number> {
  if (argv.length === 0) {
    for (const line of generalHelp().split('\n')) io.err(line);
    return EXIT.usage;
  }
  let result: ParseResult;
  try {
    result = parseCommandLine(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`vmhost: ${e.message}`);
    const c = e.command ? (COMMANDS[e.command] ?? null) : null;
    if (c) io.err(`Usage: vmhost ${c.usage}`);
    else if (e.command === 'vm') io.err('Usage: vmhost vm <start|stop|console|snapshot> [options] <name>');
    else io.err('Usage: vmhost [global options] <command> [options] [args]');
    io.err(`Run 'vmhost ${e.command ? `${e.command} ` : ''}--help' for more.`);
    return EXIT.usage;
  }
  if (result.kind === 'help') {
    for (const line of result.text.split('\n')) io.out(line);
    return EXIT.ok;
  }
  if (result.kind === 'version') {
    io.out(`vmhost ${version()}`);
    return EXIT.ok;
  }
  const { command, values, args } = result.parsed;
  const options: HostOptions = {};
  const netns = values.netns;
  if (typeof netns === 'string') options.netns = netns.startsWith('/') ? { path: netns } : netns;
  const stateDir = values['state-dir'];
  if (typeof stateDir === 'string') options.stateDir = resolve(stateDir);
  const ctx: Ctx = {
    io,
    deps,
    json: values.json === true,
    debug: values.debug === true || process.env.VMHOST_DEBUG === '1',
    paint: painter(io.isTTY === true && !process.env.NO_COLOR),
    options,
  };

  let file: string | undefined;
  try {
    switch (command.name) {
      case 'demo': {
        const ok = await deps.runDemo({ keep: values.keep === true, json: ctx.json, out: (line) => io.out(line) });
        return ok ? EXIT.ok : EXIT.error;
      }
      case 'plan':
      case 'apply':
      case 'down':
      case 'status':
        file = args[0]!;
        break;
      default:
        file = typeof values.file === 'string' ? values.file : process.env.VMHOST_FILE || 'vmhost.yaml';
    }

    let host: ResolvedHost;
    try {
      host = await deps.loadHostFile(file);
    } catch (e) {
      // HostSpecError, or another ValidationError of loading
      if (e instanceof ValidationError) return reportSpecError(ctx, file, e);
      throw e;
    }

    switch (command.name) {
      case 'plan':
        return await runPlan(ctx, host, file, values['detailed-exitcode'] === true);
      case 'apply':
      case 'down':
        return await runApplyOrDown(ctx, host, file, command.name);
      case 'status':
        return await runStatus(ctx, host);
      case 'vm start': {
        const name = args[0]!;
        await deps.startVm(host, name, { ...options });
        if (ctx.json) io.out(JSON.stringify({ vm: name, started: true }, null, 2));
        else io.out(`Started vm ${name}.`);
        return EXIT.ok;
      }
      case 'vm stop': {
        const name = args[0]!;
        const stopOptions: HostOptions & { timeoutMs?: number } = { ...options };
        if (typeof values.timeout === 'string') stopOptions.timeoutMs = Math.round(Number(values.timeout) * 1000);
        const r = await deps.stopVm(host, name, stopOptions);
        if (ctx.json) io.out(JSON.stringify({ vm: name, step: r.step, ms: r.ms }, null, 2));
        else if (r.step === 'not-running') io.out(`vm ${name} was not running.`);
        else io.out(`Stopped vm ${name} by ${r.step} in ${formatMs(r.ms)}.`);
        return EXIT.ok;
      }
      case 'vm snapshot': {
        const name = args[0]!;
        const snapOptions: HostOptions & { overlay?: string } = { ...options };
        if (typeof values.overlay === 'string') snapOptions.overlay = resolve(values.overlay);
        const r = await deps.snapshotVm(host, name, snapOptions);
        if (ctx.json) io.out(JSON.stringify({ vm: name, overlay: r.overlay, frozen: r.frozen }, null, 2));
        else {
          io.out(`Snapshot of vm ${name}: now writing to ${r.overlay}`);
          io.out(`Frozen: ${r.frozen}`);
        }
        return EXIT.ok;
      }
      case 'vm console':
        return await runConsole(ctx, host, args[0]!, values.follow === true);
    }
    throw new Error(`unhandled command ${command.name}`);
  } catch (e) {
    return reportError(ctx, e, file, command.name);
  }
}

function reportSpecError(ctx: Ctx, file: string, e: ValidationError): number {
  const problems: Array<{ path: string; value?: unknown; message: string }> = e instanceof HostSpecError ? e.problems : [{ path: e.field, message: e.message }];
  if (ctx.json) {
    const error: Record<string, unknown> = { name: e.name, message: e.message, file };
    error.field = e.field;
    error.problems = problems.map((p) => ({ path: p.path, message: p.message, ...(p.value !== undefined ? { value: p.value } : {}) }));
    ctx.io.out(JSON.stringify({ error }, null, 2));
  } else {
    for (const p of problems) ctx.io.err(p.path ? `${file}: ${p.path}: ${p.message}` : `${file}: ${p.message}`);
    ctx.io.err(`vmhost: ${file} is not a valid host file (${plural(problems.length, 'problem')})`);
  }
  return EXIT.spec;
}

function reportError(ctx: Ctx, e: unknown, file: string | undefined, command: string): number {
  if (e instanceof HostApplyError) return reportApplyError(ctx, e, file ?? '', command);
  if (ctx.json) {
    const error: Record<string, unknown> = { name: errorName(e), message: describeError(e) };
    const { code, field } = e as { code?: unknown; field?: unknown };
    if (typeof code === 'string') error.code = code;
    if (typeof field === 'string') error.field = field;
    ctx.io.out(JSON.stringify({ error }, null, 2));
  } else {
    ctx.io.err(`vmhost: ${command}: ${describeError(e)}`);
  }
  printStack(ctx, e);
  return EXIT.error;
}

function printStack(ctx: Ctx, e: unknown): void {
  if (!ctx.debug) return;
  let cur: unknown = e;
  for (let depth = 0; cur !== undefined && depth < 5; depth++) {
    const stack = cur instanceof Error ? (cur.stack ?? String(cur)) : String(cur);
    ctx.io.err(depth === 0 ? stack : `Caused by: ${stack}`);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
}

/** Numbers the steps as their events arrive (independent of whether `index` counts from 0 or 1). */
class ProgressPrinter {
  private count = 0;
  private readonly positions = new Map<string, number>();
  constructor(private readonly ctx: Ctx) {}

  position(step: Step): number | undefined {
    return this.positions.get(step.id);
  }

  private place(step: Step): number {
    let pos = this.positions.get(step.id);
    if (pos === undefined) {
      pos = ++this.count;
      this.positions.set(step.id, pos);
    }
    return pos;
  }

  readonly onProgress = (ev: ProgressEvent): void => {
    const { io, paint } = this.ctx;
    switch (ev.type) {
      case 'step-start':
        this.place(ev.step);
        break;
      case 'step-done':
        io.err(`[${this.place(ev.step)}/${ev.total}] ${ev.step.description} ... ${paint('done', 'green')} (${formatMs(ev.ms)})`);
        break;
      case 'step-failed':
        io.err(`[${this.place(ev.step)}/${ev.total}] ${ev.step.description} ... ${paint('FAILED', 'red')}: ${describeError(ev.error)}`);
        break;
      case 'undo-start':
        break;
      case 'undo-done':
        io.err(`undo: ${ev.step.description} ... ${paint('done', 'green')}`);
        break;
      case 'undo-failed':
        io.err(`undo: ${ev.step.description} ... ${paint('FAILED', 'red')}: ${describeError(ev.error)}`);
        break;
    }
  };
}

function reportApplyError(ctx: Ctx, e: HostApplyError, file: string, command: string): number {
  const undoFailed = e.undoErrors.length > 0;
  const code = undoFailed ? EXIT.undoFailed : EXIT.error;
  if (ctx.json) {
    const error: Record<string, unknown> = {
      name: e.name,
      message: describeError(e.cause),
      step: stepJson(e.step),
      undone: e.undone.map(stepJson),
      undoErrors: e.undoErrors.map((u) => ({ step: stepJson(u.step), message: describeError(u.error) })),
      halfApplied: undoFailed,
    };
    const c = (e.cause as { code?: unknown } | undefined)?.code;
    if (typeof c === 'string') error.code = c;
    ctx.io.out(JSON.stringify({ error }, null, 2));
    printStack(ctx, e.cause ?? e);
    return code;
  }
  const { io, paint } = ctx;
  const pos = ctx.progress?.position(e.step);
  io.err(`vmhost: ${command} ${paint('failed', 'red')} at step ${pos !== undefined ? `${pos} ` : ''}(${e.step.id}): ${e.step.description}`);
  io.err(`  error: ${describeError(e.cause)}`);
  const inner = e.cause instanceof Error ? e.cause.cause : undefined;
  if (inner !== undefined && describeError(inner) !== describeError(e.cause)) io.err(`  caused by: ${describeError(inner)}`);
  if (e.undone.length === 0) io.err('  nothing had to be undone');
  else {
    io.err(`  undone (${plural(e.undone.length, 'step')}):`);
    for (const s of e.undone) io.err(`    ${actionSymbol(s.action)} ${s.description}`);
  }
  if (undoFailed) {
    io.err(`  ${paint('undo failed', 'red')} for ${plural(e.undoErrors.length, 'step')}:`);
    for (const u of e.undoErrors) io.err(`    ${u.step.description}: ${describeError(u.error)}`);
    io.err(`vmhost: the host may be half-applied. Check it with 'vmhost status ${file}', then run 'vmhost apply ${file}' or 'vmhost down ${file}'.`);
  } else {
    io.err(`vmhost: the host is as it was before this ${command}.`);
  }
  printStack(ctx, e.cause ?? e);
  return code;
}

async function runPlan(ctx: Ctx, host: ResolvedHost, file: string, detailed: boolean): Promise<number> {
  const p = await ctx.deps.plan(host, { ...ctx.options });
  const pending = p.steps.length > 0;
  if (ctx.json) ctx.io.out(JSON.stringify(p, null, 2));
  else if (!pending) ctx.io.out(`No changes. Host "${host.name}" matches ${file}.`);
  else {
    for (const s of p.steps) ctx.io.out(`${ctx.paint(actionSymbol(s.action), actionColour(s.action))} ${s.description}`);
    const counts = new Map<StepAction, number>();
    for (const s of p.steps) counts.set(s.action, (counts.get(s.action) ?? 0) + 1);
    const parts = [...counts].map(([a, n]) => `${n} ${a}`);
    ctx.io.out('');
    ctx.io.out(`Plan: ${plural(p.steps.length, 'step')} (${parts.join(', ')}). Run 'vmhost apply ${file}' to carry them out.`);
  }
  return detailed && pending ? EXIT.changes : EXIT.ok;
}

async function runApplyOrDown(ctx: Ctx, host: ResolvedHost, file: string, which: 'apply' | 'down'): Promise<number> {
  const progress = new ProgressPrinter(ctx);
  ctx.progress = progress;
  try {
    const options: HostOptions = { ...ctx.options, onProgress: progress.onProgress };
    const report = which === 'apply' ? await ctx.deps.apply(host, options) : await ctx.deps.down(host, options);
    if (ctx.json) ctx.io.out(JSON.stringify(report, null, 2));
    else if (!report.changed) ctx.io.out(which === 'apply' ? `No changes. Host "${host.name}" matches ${file}.` : `Nothing to tear down for host "${host.name}".`);
    else {
      const what = which === 'apply' ? 'Apply complete' : 'Down complete';
      ctx.io.out(`${what}: ${plural(report.steps.length, 'step')} in ${formatMs(report.ms)}.`);
    }
    return EXIT.ok;
  } catch (e) {
    if (e instanceof HostApplyError) return reportApplyError(ctx, e, file, which);
    throw e;
  }
}

/** The human form of a {@link HostStatus}, one string per line. */
export function formatStatus(s: HostStatus, colour = false): string[] {
  const paint = painter(colour);
  const yes = (b: boolean, t = 'yes', f = 'no'): string => (b ? paint(t, 'green') : paint(f, 'red'));
  const lines: string[] = [];
  lines.push(`Host ${s.name}${s.netns ? ` (netns ${s.netns})` : ''}: ${s.applied ? 'applied' : paint('not applied', 'yellow')}`);
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
  return lines.flatMap((l) => l.split('\n'));
}

function formatDate(d: Date): string {
  const t = d.getTime();
  return Number.isNaN(t) ? String(d) : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

async function runStatus(ctx: Ctx, host: ResolvedHost): Promise<number> {
  const s = await ctx.deps.status(host, { ...ctx.options });
  if (ctx.json) ctx.io.out(JSON.stringify(s, null, 2));
  else for (const line of formatStatus(s, ctx.io.isTTY === true && !process.env.NO_COLOR)) ctx.io.out(line);
  return EXIT.ok;
}

async function runConsole(ctx: Ctx, host: ResolvedHost, name: string, follow: boolean): Promise<number> {
  const path = await ctx.deps.consoleFile(host, name, { ...ctx.options });
  if (follow) {
    if (ctx.json) {
      ctx.io.err('vmhost: vm console: --follow cannot be combined with --json');
      return EXIT.usage;
    }
    const ac = new AbortController();
    const onSigint = (): void => ac.abort();
    process.once('SIGINT', onSigint);
    try {
      await followFile(path, (line) => ctx.io.out(line), ac.signal, {
        onWaiting: () => ctx.io.err(`vmhost: waiting for ${path} (vm ${name} has not written its console yet)`),
      });
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
    return EXIT.ok;
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ENOENT') throw new Error(`vm ${name} has no console log yet (${path})`);
    throw e;
  }
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ vm: name, file: path, content: text }, null, 2));
    return EXIT.ok;
  }
  const body = text.replace(/\r\n?/g, '\n').replace(/\n$/, '');
  if (body !== '') ctx.io.out(body);
  return EXIT.ok;
}

/**
 * Prints a file line by line, then keeps printing what is appended until `signal` aborts (like
 * `tail -f`, from the start of the file). Waits for a file that does not exist yet, starts over
 * when it is truncated or replaced, and prints a last partial line when stopped.
 */
export async function followFile(
  path: string,
  onLine: (line: string) => void,
  signal: AbortSignal,
  opts: { intervalMs?: number; onWaiting?: () => void } = {},
): Promise<void> {
  const interval = opts.intervalMs ?? 200;
  let pos = 0;
  let ino: number | undefined;
  let partial = '';
  let decoder = new StringDecoder('utf8');
  let saidWaiting = false;
  const emit = (text: string): void => {
    const parts = (partial + text).split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) onLine(p.replace(/\r$/, ''));
  };
  while (!signal.aborted) {
    let st;
    try {
      st = await stat(path);
    } catch (e) {
      if ((e as { code?: unknown }).code !== 'ENOENT') throw e;
      if (!saidWaiting) opts.onWaiting?.();
      saidWaiting = true;
      st = undefined;
    }
    if (st) {
      if ((ino !== undefined && st.ino !== ino) || st.size < pos) {
        // Replaced or truncated (the VM was started again): start over.
        if (partial) onLine(partial.replace(/\r$/, ''));
        partial = '';
        decoder = new StringDecoder('utf8');
        pos = 0;
      }
      ino = st.ino;
      if (st.size > pos) {
        const fh = await open(path, 'r');
        try {
          const buf = Buffer.alloc(64 * 1024);
          for (;;) {
            const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
            if (bytesRead === 0) break;
            pos += bytesRead;
            emit(decoder.write(buf.subarray(0, bytesRead)));
          }
        } finally {
          await fh.close();
        }
      }
    }
    try {
      await delay(interval, undefined, { signal });
    } catch {
      break;
    }
  }
  const rest = partial + decoder.end();
  if (rest) onLine(rest.replace(/\r$/, ''));
}
