/**
 * The `vmhost` command line as a library: {@link main} and what it is built from, for tests and
 * for programs that embed it.
 * @module
 */
export { main } from './main.js';
export type { MainOptions } from './main.js';
export { defaultDeps, EXIT } from './deps.js';
export type { CliDeps, CliIO } from './deps.js';
export { commandHelp, generalHelp, version } from './args.js';
export { actionSymbol, describeError, formatMs, formatStatus, formatTable } from './format.js';
export { followFile } from './follow.js';
