/**
 * The `vmhost run` section of `vmhost status`: whether the service runs, its VMs (policy,
 * restarts, last exit, why one is left down, crash loops), the services' restarts and the last
 * repairs, from the status file the service keeps.
 * @module
 */
import type { HostStatus } from '../types.js';
import { formatTable, type Colour } from './format.js';

/** The lines of the service section (none when no service ever ran for the host). */
export function formatService(s: HostStatus, paint: (t: string, c: Colour) => string): string[] {
  const sv = s.service;
  if (!sv) return [];
  const lines: string[] = [''];
  const head = sv.running ? paint(`running (pid ${sv.pid}, since ${sv.since})`, 'green') : paint(`not running (last: pid ${sv.pid}, ${sv.state} at ${sv.updatedAt})`, 'yellow');
  lines.push(`Service (vmhost run): ${head}${sv.firewallWatch ? `, firewall watched by ${sv.firewallWatch === 'events' ? 'nf_tables events' : 'a periodic check'}` : ''}`);
  const vms = Object.entries(sv.vms);
  if (vms.length > 0) {
    lines.push(
      formatTable(
        ['  VM', 'RESTART', 'RESTARTS', 'LAST EXIT', 'STATE'],
        vms.map(([name, v]) => [
          `  ${name}`,
          v.policy,
          String(v.restarts),
          v.lastExit ? `${v.lastExit.cause} at ${v.lastExit.at}` : '-',
          v.crashLoop ? paint(`crash loop: ${v.down ?? 'given up'}`, 'red') : v.down !== undefined ? `down: ${v.down}` : v.nextRestartAt ? `restart due ${v.nextRestartAt}` : v.running ? 'supervised' : '-',
        ]),
      ),
    );
  }
  for (const [name, x] of Object.entries(sv.services)) if (x) lines.push(`  ${name}: ${x.running ? 'running' : 'not running'}, ${x.restarts} restart(s)${x.lastExit ? `, last exit ${x.lastExit.at}` : ''}`);
  const kinds = Object.entries(sv.repairs.byKind);
  lines.push(`  repairs: ${kinds.length > 0 ? kinds.map(([k, n]) => `${k} ${n}`).join(', ') : 'none'}`);
  for (const r of sv.repairs.last.slice(-5)) lines.push(`    ${r.at} ${r.trigger}: ${r.error !== undefined ? paint(`failed: ${r.error}`, 'red') : r.steps.join(', ')} (${r.ms} ms)`);
  if (sv.lastError) lines.push(paint(`  last error: ${sv.lastError.at} ${sv.lastError.message}`, 'red'));
  return lines;
}
