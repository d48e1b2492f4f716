/**
 * @vmhost/host: the seed guide's whole VM host from one declarative file (plan, apply, roll back,
 * tear down), each VM on its own public IPv6 address.
 * @module
 */
export type * from './types.js';
export { HostSpecError, HostPreconditionError, HostApplyError, HostAbortedError, HostStateError, HostBusyError, HostOwnerError, HostNoConsoleError, ServiceError, DnsmasqError, ProxyServiceError, GuestBuildError } from './errors.js';
export type { HostSpecProblem, HostStateErrorCode } from './errors.js';
export { loadHostFile, parseHostFile } from './spec/parse.js';
export type { ParseHostFileOptions } from './spec/parse.js';
export { resolveHost } from './spec/resolve.js';
export { plan, apply, down } from './engine/run.js';
export { recover } from './engine/recover.js';
export { status } from './engine/status.js';
export { startVm, stopVm, snapshotVm, consoleFile } from './engine/vm-ops.js';
export { stateDirFor, dataDirFor, vmRunDir } from './engine/context.js';
export { firewallModel } from './engine/desired.js';
export { renderDnsmasqConfig, startDnsmasq, stopDnsmasq, dnsmasqStatus, readLeases, parseLeases } from './services/dnsmasq.js';
export type { DnsmasqOptions, DnsmasqStatus, DnsmasqStartResult } from './services/dnsmasq.js';
export { TcpProxy, startProxyService, stopProxyService, proxyServiceStatus, proxyServiceStats } from './services/proxy6.js';
export type { ProxyOptions, ProxyLimits, ProxyRoute, ProxyRouteStats, ProxyTotals, ProxyServiceStats, ProxyServiceOptions, ProxyServiceStatus, ProxyServiceStartResult } from './services/proxy6.js';
export type { ServiceStatus, ServiceStartResult } from './services/supervisor.js';
export { runDemo } from './demo/demo.js';
export type { DemoOptions, DemoCheck } from './demo/demo.js';
export { buildTestGuest, readTestGuest, defaultGuestDir } from './guests/test-guest/build.js';
export type { TestGuest, TestGuestOptions } from './guests/test-guest/build.js';
