/**
 * The command line of `vmhost`: finding the command, parsing its options and arguments (node's
 * `parseArgs`), usage errors, the version, and the help texts.
 * @module
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { HOST_ROOT } from '../package-root.js';
import { COMMON_OPTIONS_HELP, GLOBAL_HELP, GLOBAL_OPTS, VM_FILE_HELP, type Command, type Invocation, type OptDef } from './command.js';
import { COMMANDS, GUEST_SUBCOMMANDS, VM_SUBCOMMANDS } from './commands/index.js';
import { formatTable } from './format.js';

/** Every option of every command, for the first pass that only finds the command words. */
const ALL_OPTS: Record<string, OptDef> = { ...GLOBAL_OPTS, version: { type: 'boolean' } };
for (const c of Object.values(COMMANDS)) Object.assign(ALL_OPTS, c.options);

/** The package version (from @vmhost/host's package.json). */
export function version(): string {
  try {
    const pkg: unknown = JSON.parse(readFileSync(join(HOST_ROOT, 'package.json'), 'utf8'));
    return typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** A command's arguments as the help shows them: `<name> [label]`. */
function argsText(c: Command): string {
  return [...c.args.map((a) => `<${a}>`), ...(c.optionalArgs ?? []).map((a) => `[${a}]`)].join(' ');
}

/** The words after `vmhost vm`, for messages: `start, stop, ... or snapshot-delete`. */
const VM_WORDS = `${VM_SUBCOMMANDS.slice(0, -1).join(', ')} or ${VM_SUBCOMMANDS.at(-1)!}`;

/** The usage line of `vmhost vm`. */
export const VM_USAGE = `vmhost vm <${VM_SUBCOMMANDS.join('|')}> [options] <name> [args]`;

/** The general help text. */
export function generalHelp(): string {
  const rows = Object.values(COMMANDS).map((c) => [`  ${c.name} ${argsText(c)}`.trimEnd(), c.summary]);
  rows.push(['  help [command]', 'Show help for a command']);
  return `vmhost: a VM host's networking and VMs from one declarative file

Usage: vmhost [global options] <command> [options] [args]

Commands:
${formatTable(null, rows)}

${GLOBAL_HELP}
  --version         Show the version

Exit codes:
  0 success, 1 error, 2 usage error, 3 invalid host file,
  4 apply failed and undoing failed too (host may be half-applied)
  plan --detailed-exitcode: 0 no changes, 2 changes pending, 1 any error (usage and host file too)

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
    const rows = VM_SUBCOMMANDS.map((s) => [`  vm ${s} ${COMMANDS[`vm ${s}`] ? argsText(COMMANDS[`vm ${s}`]!) : '<name>'}`, COMMANDS[`vm ${s}`]?.summary ?? '']);
    return `Usage: ${VM_USAGE}

Commands on one VM of the host file:
${formatTable(null, rows)}

Options:
${VM_FILE_HELP}

${GLOBAL_HELP}

Examples:
  sudo vmhost vm start web -f host.yaml
  sudo vmhost vm stop web
  vmhost vm console web --follow
  sudo vmhost vm snapshot web --name before-upgrade
  sudo vmhost vm rollback web before-upgrade

Run 'vmhost vm <command> --help' for the options of each.`;
  }
  const c = COMMANDS[name];
  if (!c) return undefined;
  return `Usage: vmhost ${c.usage}

${c.summary}.

${c.help}

${c.hostOptions ? GLOBAL_HELP : `Global options:\n${COMMON_OPTIONS_HELP}`}`;
}

/** A wrong command line: its message and the command it concerns. */
export class UsageError extends Error {
  constructor(message: string, readonly command?: string) {
    super(message);
  }
}

/** A command and how it was invoked. */
export interface Parsed extends Invocation {
  command: Command;
}

/** What the command line asks for. */
export type ParseResult = { kind: 'help'; text: string } | { kind: 'version' } | { kind: 'run'; parsed: Parsed };

/** Parses `argv` (without node and the script). @throws {UsageError} */
export function parseCommandLine(argv: string[]): ParseResult {
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
      throw new UsageError(`missing vm command: ${VM_WORDS}`, 'vm');
    }
    if (!VM_SUBCOMMANDS.includes(sub)) throw new UsageError(`unknown vm command '${sub}' (expected ${VM_WORDS})`, 'vm');
    key = `vm ${sub}`;
  }
  if (first === 'guest') {
    const sub = words[1];
    if (sub === undefined && pre.values.help === true) return { kind: 'help', text: commandHelp('guest build')! };
    if (sub === undefined || !GUEST_SUBCOMMANDS.includes(sub)) {
      throw new UsageError(sub === undefined ? 'missing guest command: build' : `unknown guest command '${sub}' (expected build)`, 'guest build');
    }
    key = `guest ${sub}`;
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
  const most = command.args.length + (command.optionalArgs?.length ?? 0);
  if (args.length > most) throw new UsageError(`unexpected argument '${args[most]!}'`, command.name);
  if (!command.hostOptions) {
    for (const o of ['netns', 'state-dir', 'data-dir']) if (values[o] !== undefined) throw new UsageError(`--${o} is not used by ${command.name}`, command.name);
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

/** A parse error's message without node's hint about '--'. */
function cleanParseMessage(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  // Node adds a hint about '--' to unknown options; keep the first sentence.
  return msg.replace(/\. To specify a positional argument.*$/s, '');
}

