#!/usr/bin/env node
// The `sessionkeeper` command: runs the compiled CLI, building it first when the sources are newer.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureBuilt, root } from './ensure-built.js';

ensureBuilt();
const { main } = await import(pathToFileURL(path.join(root, 'dist', 'src', 'cli.js')).href);
process.exitCode = await main(process.argv.slice(2), {
  stdout: (line) => process.stdout.write(line + '\n'),
  stderr: (line) => process.stderr.write(line + '\n'),
  env: process.env,
});
