#!/usr/bin/env node
// API reports (API Extractor) of every workspace package: what each package exports, as
// reviewed text in api/<package>.api.md. The packages are the workspaces of the root
// package.json: adding a workspace there is all it takes to have its API reported and checked.
//
//   node scripts/api.mjs           check: exit 1 when a package's API differs from its report (npm test runs this)
//   node scripts/api.mjs --update  write the reports anew (npm run api); review and commit the diff
//
// Works on the built declarations (dist/*.d.ts): `tsc -b` runs first (incremental, quick when built).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Extractor, ExtractorConfig } from '@microsoft/api-extractor';

const root = resolve(new URL('..', import.meta.url).pathname);
const update = process.argv.includes('--update');
const workspaces = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).workspaces;

const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b'], { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

const temp = mkdtempSync(join(tmpdir(), 'vmhost-api-'));
const changed = [];
try {
  for (const ws of workspaces) {
    const dir = join(root, ws);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const short = pkg.name.replace(/^@[^/]+\//, '');
    const config = ExtractorConfig.prepare({
      configObject: {
        projectFolder: dir,
        mainEntryPointFilePath: join(dir, 'dist/index.d.ts'),
        compiler: { tsconfigFilePath: join(dir, 'tsconfig.json') },
        apiReport: { enabled: true, reportFolder: join(root, 'api'), reportTempFolder: temp, reportFileName: short },
        docModel: { enabled: false },
        dtsRollup: { enabled: false },
        tsdocMetadata: { enabled: false },
        newlineKind: 'lf',
        messages: {
          compilerMessageReporting: { default: { logLevel: 'warning' } },
          extractorMessageReporting: {
            default: { logLevel: 'warning', addToApiReportFile: true },
            // Everything a package exports is public; no release tags.
            'ae-missing-release-tag': { logLevel: 'none' },
            // Documentation is reviewed in the sources (TSDoc); the report is about the shape.
            'ae-undocumented': { logLevel: 'none', addToApiReportFile: false },
            // {@link member} references written for editors, which API Extractor cannot resolve.
            'ae-unresolved-link': { logLevel: 'none', addToApiReportFile: false },
          },
          tsdocMessageReporting: { default: { logLevel: 'none' } },
        },
      },
      configObjectFullPath: undefined,
      packageJsonFullPath: join(dir, 'package.json'),
    });
    const result = Extractor.invoke(config, {
      localBuild: update,
      showVerboseMessages: false,
      messageCallback: (m) => {
        if (m.logLevel === 'warning' || m.logLevel === 'error') m.handled = false;
        else m.handled = true;
      },
    });
    if (result.apiReportChanged) changed.push(`${pkg.name} (api/${short}.api.md)`);
    if (result.errorCount > 0) {
      console.error(`api: ${pkg.name}: ${result.errorCount} error(s)`);
      process.exitCode = 1;
    }
  }
} finally {
  rmSync(temp, { recursive: true, force: true });
}
if (changed.length && update) console.log(`api: updated ${changed.join(', ')}: review the diff and commit it`);
else if (changed.length) {
  console.error(`api: the public API changed without its report: ${changed.join(', ')}.\nRun \`npm run api\`, review the diff of api/*.api.md and commit it.`);
  process.exitCode = 1;
} else console.log(`api: ${workspaces.length} package reports up to date`);
