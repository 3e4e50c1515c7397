// `npm run bench -- NAME`: build if the sources changed, then run dist/bench/index.js with the names.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureBuilt, root } from './ensure-built.js';

ensureBuilt();
await import(pathToFileURL(path.join(root, 'dist', 'bench', 'index.js')).href);
