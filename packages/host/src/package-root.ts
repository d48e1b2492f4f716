/**
 * Where this package's files are, whoever runs its code: the module graph of `dist/` (or of `src/`
 * through tsx), or the single-file `vmhost` command (`dist/vmhost.js`, a bundle of `dist/`), whose
 * modules no longer sit at their own paths. Files the code reads or starts (package.json, the IPv6
 * proxy's entry, the command itself for a systemd unit, the parser's sources) are found from the
 * package's root, which Node resolves from the package's name.
 * @module
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The root directory of @vmhost/host (where its package.json is). */
export const HOST_ROOT: string = dirname(createRequire(import.meta.url).resolve('@vmhost/host/package.json'));

/** Whether this code runs from the TypeScript sources (tsx, the repository's `vmhost-source` condition). */
export const FROM_SOURCE: boolean = import.meta.url.endsWith('.ts');

/**
 * The path of one of the package's modules, `rel` without extension and relative to `src/` or
 * `dist/` (`services/proxy6-main`): the source when running from source, else the built module.
 */
export function moduleFile(rel: string): string {
  return FROM_SOURCE ? join(HOST_ROOT, 'src', `${rel}.ts`) : join(HOST_ROOT, 'dist', `${rel}.js`);
}
