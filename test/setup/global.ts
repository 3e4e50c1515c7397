// Once per test run: compile the product (tests of `npm start` and the CLI run the built code), make
// the PGlite template, and the Postgres template when TEST_DATABASE_URL is set; drop them after.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { databasesWithPrefix, dropDatabase, makePGliteTemplate, makePgTemplate } from '../../src/store/provision.js';

declare module 'vitest' {
  export interface ProvidedContext {
    runId: string;
    pgliteTemplate: string;
    pgTemplate: string | null;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = path.resolve(import.meta.dirname, '../..');
  // SK_SKIP_BUILD=1: a quick run of tests that do not start the built product (emulators,
  // connectors) while other files do not compile yet; npm test always builds.
  if (process.env['SK_SKIP_BUILD'] !== '1') {
    execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], {
      stdio: 'inherit',
    });
  }

  const runId = crypto.randomBytes(4).toString('hex');
  project.provide('runId', runId);

  const dumpFile = path.join(os.tmpdir(), `sessionkeeper-template-${runId}.tar`);
  const dump = await makePGliteTemplate();
  fs.writeFileSync(dumpFile, Buffer.from(await dump.arrayBuffer()));
  project.provide('pgliteTemplate', dumpFile);

  const url = process.env['TEST_DATABASE_URL'];
  let pgTemplate: string | null = null;
  if (url) {
    pgTemplate = `sk_tpl_${runId}`;
    try {
      await makePgTemplate(url, pgTemplate);
    } catch (err) {
      throw new Error(`TEST_DATABASE_URL is set but the PostgreSQL tests cannot run there: ${(err as Error).message}`);
    }
    console.log(`store tests run on PGlite and on PostgreSQL (${new URL(url).host})`);
  } else {
    console.log('store tests run on PGlite only: set TEST_DATABASE_URL (as .ci/run does) to run them on PostgreSQL too');
  }
  project.provide('pgTemplate', pgTemplate);

  return async () => {
    fs.rmSync(dumpFile, { force: true });
    if (url && pgTemplate) {
      for (const name of await databasesWithPrefix(url, `sk_t_${runId}_`)) await dropDatabase(url, name);
      await dropDatabase(url, pgTemplate);
    }
  };
}
