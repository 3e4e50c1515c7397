#!/usr/bin/env node
// The `sessionkeeper` command: runs the compiled CLI, building it first when the sources are newer.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const built = path.join(root, 'dist', 'src', 'cli.js');
const buildInfo = path.join(root, 'dist', '.tsbuildinfo');

function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

const stale =
  !fs.existsSync(built) ||
  !fs.existsSync(buildInfo) ||
  ['src', 'connectors'].some((d) => fs.existsSync(path.join(root, d)) && newestSource(path.join(root, d)) > fs.statSync(buildInfo).mtimeMs);
if (stale) {
  try {
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.build.json')], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch {
    console.error('sessionkeeper: the build failed; run `npm run build` to see why');
    process.exit(1);
  }
}

const { main } = await import(pathToFileURL(built).href);
const code = await main(process.argv.slice(2), {
  stdout: (line) => process.stdout.write(line + '\n'),
  stderr: (line) => process.stderr.write(line + '\n'),
  env: process.env,
});
process.exitCode = code;
