// `npm start`: build if the sources changed, then run the server (dist/src/server.js).
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureBuilt, root } from './ensure-built.js';

ensureBuilt();
const { runServer } = await import(pathToFileURL(path.join(root, 'dist', 'src', 'server.js')).href);
await runServer();
