/**
 * @vmhost/host: the seed guide's whole VM host from one declarative file (plan, apply, roll back,
 * tear down), each VM on its own public IPv6 address; plus a lab kit for namespace-based tests.
 * @module
 */
export type * from './types.js';
export { loadHostFile, parseHostFile, resolveHost, HostSpecError } from './spec.js';
export type { HostSpecProblem, ParseHostFileOptions } from './spec.js';
export {
  plan,
  apply,
  down,
  status,
  startVm,
  stopVm,
  snapshotVm,
  consoleFile,
  stateDirFor,
  vmRunDir,
  firewallModel,
  wantedEntries,
  HostApplyError,
  HostPreconditionError,
} from './engine.js';
export { renderDnsmasqConfig, startDnsmasq, stopDnsmasq, dnsmasqStatus, readLeases, DnsmasqError } from './dnsmasq.js';
export type { DnsmasqOptions } from './dnsmasq.js';
export { TcpProxy, startProxyService, stopProxyService, proxyServiceStatus } from './proxy6.js';
export type { ProxyOptions, ProxyRoute } from './proxy6.js';
export { Lab, LabSetupError, LabCloseError, DEFAULT_LAB_PREFIX, LAB_OWNER_DIR, LAB_NAME_MAX } from './lab.js';
export type { LabOptions, LabNamespaceSpec, LabBridgeSpec, LabLinkSpec, LabLinkEnd, LabAddressOptions } from './lab.js';
export { runDemo } from './demo.js';
export type { DemoOptions, DemoCheck } from './demo.js';
