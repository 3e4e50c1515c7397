// `npm run bench -- graph-actions`: the platform actions on Microsoft 365 (events, To Do, sendMail) against the emulator.
import { runActionsBench } from './actions-common.js';

export function run(): Promise<void> {
  return runActionsBench('graph-actions', 'microsoft', /^\/v1\.0\/(me|users\/[^/]+)\/todo\//);
}
