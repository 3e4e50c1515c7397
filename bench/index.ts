// `npm run bench -- NAME`: runs one benchmark (or all), each printing one JSON line per figure.

const benches: Record<string, () => Promise<{ run(): Promise<void> }>> = {
  store: () => import('./store.js'),
  domain: () => import('./domain.js'),
  'google-sync': () => import('./google-sync.js'),
  'graph-sync': () => import('./graph-sync.js'),
  engine: () => import('./engine.js'),
  'google-actions': () => import('./google-actions.js'),
  'graph-actions': () => import('./graph-actions.js'),
  slots: () => import('./slots.js'),
  followups: () => import('./followups.js'),
};

const names = process.argv.slice(2);
const unknown = names.filter((n) => !(n in benches));
if (unknown.length > 0) {
  process.stderr.write(`unknown bench ${unknown.join(', ')}; known: ${Object.keys(benches).join(', ')}\n`);
  process.exit(2);
}
for (const name of names.length > 0 ? names : Object.keys(benches)) {
  await (await benches[name]!()).run();
}
