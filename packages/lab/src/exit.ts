/**
 * The process 'exit' hook of the lab kit: labs and bare namespaces still open when the process
 * exits normally (also after an uncaught exception) are removed synchronously. Installed only
 * while something is open.
 * @module
 */

/** Something to remove synchronously at exit. */
export interface ExitCleanup {
  closeSync(): void;
}

const open = new Set<ExitCleanup>();
let installed = false;

function onExit(): void {
  for (const o of open) o.closeSync();
}

/** Registers (`on`) or unregisters `o` for removal at process exit. */
export function trackOpen(o: ExitCleanup, on: boolean): void {
  if (on) open.add(o);
  else open.delete(o);
  if (open.size > 0 && !installed) {
    process.on('exit', onExit);
    installed = true;
  } else if (open.size === 0 && installed) {
    process.off('exit', onExit);
    installed = false;
  }
}
