// A node:test reporter that records the run's final counts as one JSON object. The test
// runner's own diagnostics ("tests N", "pass N", ...) are the source, so the numbers are
// exactly the ones the spec reporter prints.
export default async function* summaryReporter(source) {
  const counts = {};
  for await (const event of source) {
    if (event.type === 'test:diagnostic') {
      const m = /^(tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ([\d.]+)$/.exec(event.data.message);
      if (m) counts[m[1]] = Number(m[2]);
    }
  }
  yield JSON.stringify(counts) + '\n';
}
