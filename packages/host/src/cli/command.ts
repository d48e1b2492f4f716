/**
 * What a command of the `vmhost` command line is: its usage, options and help, and how it runs;
 * the context every command runs with; the global options and their help.
 * @module
 */
import type { SavedPlan } from '../engine/saved-plan.js';
import type { HostOptions, ResolvedHost } from '../types.js';
import type { CliDeps, CliIO } from './deps.js';
import type { Colour } from './format.js';
import type { ProgressPrinter } from './report.js';

/** An option of node's `parseArgs`. */
export type OptDef = { type: 'string' | 'boolean'; short?: string };

/** The options every command takes. */
export const GLOBAL_OPTS = {
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  netns: { type: 'string' },
  'state-dir': { type: 'string' },
  'data-dir': { type: 'string' },
} satisfies Record<string, OptDef>;

/** `-f FILE` of the vm commands. */
export const FILE_OPT: Record<string, OptDef> = { file: { type: 'string', short: 'f' } };

/** The help of the global options that say where a host is (commands that act on one). */
export const HOST_OPTIONS_HELP = `  --netns NAME      Act inside network namespace NAME (or an nsfs path such as /proc/PID/ns/net)
  --state-dir DIR   State directory (default /run/vmhost/<name>; /run/vmhost/<netns>/<name> with
                    --netns NAME, /run/vmhost/nsfs/<dev>-<inode>/<name> with --netns PATH). It and
                    its parents must be root's and not writable by others (a sticky parent such
                    as /tmp is allowed above a directory of root's)
  --data-dir DIR    Persistent data: disk chains, cloud-init seeds (default /var/lib/vmhost/<name>,
                    keyed by --netns as the state directory is; the same rules; down keeps it)`;

/** The help of the other global options. */
export const COMMON_OPTIONS_HELP = `  --json            Machine-readable output: JSON on stdout
  --debug           Print stack traces of errors (also VMHOST_DEBUG=1); with
                    NODE_OPTIONS=--enable-source-maps they name the TypeScript sources
  -h, --help        Show help`;

/** The help of every global option. */
export const GLOBAL_HELP = `Global options:
${HOST_OPTIONS_HELP}
${COMMON_OPTIONS_HELP}`;

/** The help of `-f`. */
export const VM_FILE_HELP = `  -f, --file FILE   The host file (default: $VMHOST_FILE, else ./vmhost.yaml)`;

/** `ctx.options` with notices (an interrupted disk operation finished, ...) printed on stderr as `note: ...`. */
export function withNotes(ctx: CliCtx): HostOptions {
  return { ...ctx.options, onProgress: (ev) => void (ev.type === 'notice' && ctx.io.err(`${ctx.paint('note', 'yellow')}: ${ev.message}`)) };
}

/** What a command runs with. */
export interface CliCtx {
  io: CliIO;
  deps: CliDeps;
  json: boolean;
  debug: boolean;
  paint: (s: string, c: Colour) => string;
  /** --netns and --state-dir. */
  options: HostOptions;
  /** Registers what SIGHUP does (the entry point; `vmhost run` reloads). */
  onHangup?: (listener: () => void) => void;
  /** The progress of the running apply/down (numbers the failing step). */
  progress?: ProgressPrinter;
}

/** A parsed command line: option values and positional arguments (after the command words). */
export interface Invocation {
  values: Record<string, string | boolean | undefined>;
  args: string[];
  /** `apply` of a saved plan (`plan --out`): the plan, checked; the host file is the one it names. */
  saved?: SavedPlan;
}

/** What every command declares. */
interface CommandBase {
  /** `plan`, `vm stop`, ... */
  name: string;
  /** The usage line after `vmhost `. */
  usage: string;
  summary: string;
  /** Options of this command besides the global ones. */
  options: Record<string, OptDef>;
  /** Names of the required positional arguments. */
  args: string[];
  /** Names of optional positional arguments after them (`vm commit <name> [label]`). */
  optionalArgs?: string[];
  /** Whether --netns/--state-dir apply. */
  hostOptions: boolean;
  help: string;
}

/** A command on a host file: the file is loaded (and validated) before `run`. */
export interface HostCommand extends CommandBase {
  /** Where the file comes from: the first argument, or `-f` (else $VMHOST_FILE, else ./vmhost.yaml). */
  file: 'arg' | 'option';
  /** Called before the host file is loaded, for work that does not need it (`plan` starts reading the firewall's tables). */
  before?(ctx: CliCtx): void;
  run(ctx: CliCtx, host: ResolvedHost, file: string, inv: Invocation): Promise<number>;
}

/** A command without a host file (`demo`). */
export interface PlainCommand extends CommandBase {
  file: 'none';
  run(ctx: CliCtx, inv: Invocation): Promise<number>;
}

/** A command of `vmhost`. */
export type Command = HostCommand | PlainCommand;
