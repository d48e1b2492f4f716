/**
 * @vmhost/net: native rtnetlink control of links, addresses, routes, neighbours and network
 * namespaces for Node.
 * @module
 */
export * as netns from './netns.js';
export type { NetnsRef, RunResult, RunOptions } from './netns.js';
export { VmhostError, ValidationError, SystemError } from './errors.js';
export { openTap, createPersistentTap, setTapPersist } from './tap.js';
export type { OpenTapOptions, TapFd } from './tap.js';
export * from './validate.js';
