/**
 * Processes (docs/net-processes.md): /proc facts, ending a process by pid with a signal ladder,
 * waiting for an exit (pidfd), owner records, and the open-file limit of this process. Shared by the lab kit, @vmhost/kvm's Vm and @vmhost/host's services.
 * @module
 */
export { allPids, cmdline, groupMembers, isAlive, isLiveState, procStat, procState, readPidfile } from './stat.js';
export type { ProcStat } from './stat.js';
export { DEFAULT_TERMINATE_LADDER, sendSignal, terminate } from './terminate.js';
export type { TerminateOptions, TerminateResult, TerminateRung } from './terminate.js';
export { formatOwnerRecord, isOwnerAlive, parseOwnerRecord, selfOwner } from './owner.js';
export type { ProcessOwner } from './owner.js';
export { watchExit } from './exit-watch.js';
export type { ExitWatch } from './exit-watch.js';
export { noFileLimit, raiseNoFileLimit, setNoFileLimit } from './limits.js';
export type { NoFileLimit } from './limits.js';
