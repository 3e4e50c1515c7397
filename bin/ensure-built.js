// Builds dist/ with tsc when it is missing or older than the sources, so `npm start` and the
// `sessionkeeper` command always run current code, and a deployed tree (no tsc) runs what it has.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

export function ensureBuilt() {
  const buildInfo = path.join(root, 'dist', '.tsbuildinfo');
  const builtAt = fs.existsSync(buildInfo) ? fs.statSync(buildInfo).mtimeMs : 0;
  const sources = ['src', 'connectors', 'bench'].map((d) => path.join(root, d)).filter((d) => fs.existsSync(d));
  if (builtAt > 0 && sources.every((d) => newestSource(d) <= builtAt)) return;
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!fs.existsSync(tsc)) {
    if (builtAt > 0) return; // a deployed tree without dev tools: run what was built
    console.error('sessionkeeper: dist/ is missing and TypeScript is not installed; run `npm install` first');
    process.exit(1);
  }
  try {
    execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: ['ignore', 'inherit', 'inherit'] });
  } catch {
    console.error('sessionkeeper: the build failed (see above)');
    process.exit(1);
  }
}
