// The examples of a package README, as the README tests run them: every ```ts block, named by its
// first line `// example: NAME` when it has one, else by its number; with the names an example
// uses replaced by ones the test reserved (net: the namespaces 'lab' and 'lab-peer'; lab: the
// prefix 'myapp-test-'). Used by the README tests against the sources and by the packaging test
// against the installed tarballs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;

/** One runnable example of a README. */
export interface ReadmeExample {
  /** `boot` for a block starting with `// example: boot`, else `1`, `2`, ... */
  name: string;
  code: string;
}

/** The ```ts blocks of packages/<pkg>/README.md, in order. */
export function readmeExamples(pkg: string): ReadmeExample[] {
  const md = readFileSync(join(root, 'packages', pkg, 'README.md'), 'utf8');
  return [...md.matchAll(/```ts\n([\s\S]*?)```/g)].map((m, i) => {
    const code = m[1]!;
    const named = /^\/\/ example: ([\w-]+)\n/.exec(code);
    return { name: named ? named[1]! : String(i + 1), code: named ? code.slice(named[0].length) : code };
  });
}

/** Names an example uses that a test replaces by reserved ones. */
export interface ExampleNames {
  /** For 'lab' (net README). */
  netns?: string;
  /** For 'lab-peer' (net README). */
  peer?: string;
  /** For 'myapp-test-' (lab README). */
  prefix?: string;
}

/** `code` with the example's names replaced. */
export function withNames(code: string, names: ExampleNames): string {
  let out = code;
  if (names.peer !== undefined) out = out.replace(/'lab-peer'/g, `'${names.peer}'`);
  if (names.netns !== undefined) out = out.replace(/'lab'/g, `'${names.netns}'`);
  if (names.prefix !== undefined) out = out.replaceAll("'myapp-test-'", `'${names.prefix}'`);
  return out;
}
