/**
 * @vmhost/host: the seed guide's whole VM host from one declarative file (plan, apply, roll back,
 * tear down), each VM on its own public IPv6 address.
 * @module
 */
export type * from './types.js';
export { HostSpecError, HostPreconditionError, HostApplyError, HostAbortedError, HostStateError, HostBusyError, HostOwnerError, HostPlanStaleError, HostNoConsoleError, HostDiskError, HostDiskLabelError, ServiceError, DnsmasqError, ProxyServiceError, GuestBuildError } from './errors.js';
export type { HostSpecProblem, HostStateErrorCode, HostDiskErrorCode } from './errors.js';
export { parseHostFile } from './spec/parse.js';
export type { ParseHostFileOptions } from './spec/parse.js';
export { loadHostFile } from './spec/load.js';
export type { LoadHostFileOptions } from './spec/load.js';
export { resolveHost } from './spec/resolve.js';
export { plan, apply, down } from './engine/run.js';
export { recover } from './engine/recover.js';
export { savePlan, readSavedPlan, isSavedPlanFile, fileSha256 } from './engine/saved-plan.js';
export type { SavedPlan } from './engine/saved-plan.js';
export { status } from './engine/status.js';
export { startVm, stopVm, consoleFile } from './engine/vm-ops.js';
export { snapshotVm, listVmSnapshots, rollbackVm, commitVm, deleteVmSnapshot } from './engine/disk-ops.js';
export type { DiskOpOptions, SnapshotResult, VmSnapshots, ChainImageInfo } from './engine/disk-ops.js';
export type { Tombstone, TombstoneHow, DiskOp } from './engine/disks/record.js';
export { stateDirFor, dataDirFor, vmRunDir } from './engine/context.js';
export { firewallModel } from './engine/desired.js';
export { renderDnsmasqConfig, startDnsmasq, stopDnsmasq, dnsmasqStatus, readLeases, parseLeases } from './services/dnsmasq.js';
export type { DnsmasqOptions, DnsmasqStatus, DnsmasqStartResult } from './services/dnsmasq.js';
export type { GuestIpv6Options } from './guests/dnsmasq-guests.js';
export { TcpProxy, startProxyService, stopProxyService, proxyServiceStatus, proxyServiceStats } from './services/proxy6.js';
export type { ProxyOptions, ProxyLimits, ProxyRoute, ProxyRouteStats, ProxyTotals, ProxyServiceStats, ProxyServiceOptions, ProxyServiceStatus, ProxyServiceStartResult } from './services/proxy6.js';
export type { ServiceStatus, ServiceStartResult } from './services/supervisor.js';
export { runHost, HostService } from './service/service.js';
export { DEFAULT_TUNING } from './service/types.js';
export type { RunHostOptions, ServiceTuning, ServiceEvent, ServiceEventType, FirewallWatch } from './service/types.js';
export { readServiceStatus, STATUS_FILE } from './service/status-file.js';
export type { ServiceStatusView } from './service/status-file.js';
export { systemdUnit } from './service/systemd.js';
export type { UnitOptions } from './service/systemd.js';
export { runDemo } from './demo/demo.js';
export type { DemoOptions, DemoCheck } from './demo/demo.js';
export type { RealGuest } from './demo/real.js';
export { buildTestGuest, readTestGuest, defaultGuestDir } from './guests/test-guest/build.js';
export type { TestGuest, TestGuestOptions } from './guests/test-guest/build.js';
