/**
 * @vmhost/kvm: a typed QMP client and the lifecycle of QEMU virtual machines.
 * @module
 */
export * from './errors.js';
export { QmpClient } from './qmp/client.js';
export type {
  QmpConnectOptions, ExecuteOptions, WaitForEventOptions, QmpStats, QmpCloseInfo, QmpState, QmpGreeting, QemuVersion,
  QmpArgs, QmpReturn, QmpArgsParam,
} from './qmp/client.js';
export { EventStream } from './qmp/events.js';
export type { QmpEvent, TypedQmpEvent, QmpTimestamp, EventFilter, EventStreamOptions } from './qmp/events.js';
export { LineSplitter, DEFAULT_MAX_LINE_BYTES } from './qmp/lines.js';
export type { LineItem } from './qmp/lines.js';
export { MAX_JSON_DEPTH, MAX_COMMAND_BYTES, exceedsDepth } from './qmp/decode.js';
export type * from './qmp/generated.js';
export { QMP_COMMAND_NAMES, QMP_EVENT_NAMES, QMP_SCHEMA_QEMU_VERSION } from './qmp/generated.js';
export { Vm } from './vm/vm.js';
export type { StopStep, StopResult, StopOptions, StartOptions, AttachOptions, VmStatus } from './vm/vm.js';
export { buildArgs, resolveVmOptions, runFiles, passedFds, qemuEscape } from './vm/args.js';
export type { VmOptions, DriveOptions, NicOptions, ResolvedVmOptions, RunFiles, HostFacts } from './vm/args.js';
export { detectAccel } from './vm/accel.js';
export { hostTscKhz, lookupUser, qemuHasSandbox } from './vm/host.js';
export type { PasswdEntry } from './vm/host.js';
export type { AccelChoice, AccelProbe } from './vm/accel.js';
export { stableMac } from './vm/mac.js';
export { cmdline, groupMembers, isAlive, isQemuServing, procStat, procState, readPidfile, type ProcStat } from './vm/proc.js';
export { qemuImg, createImage, createOverlay, imageInfo, imageChain, backingFile, commitImage, rebaseImage, checkImage, assertFormat } from './disk/img.js';
export type { QemuImgOptions, ImageInfo, ImageChainLink, ImageCheck } from './disk/img.js';
export { liveSnapshot, liveCommit } from './disk/live.js';
export type { LiveSnapshotOptions, LiveCommitOptions } from './disk/live.js';
export { blockChain } from './disk/chain.js';
export type { ChainLink } from './disk/chain.js';
