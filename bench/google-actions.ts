// `npm run bench -- google-actions`: the platform actions on Google (Calendar, Tasks, Gmail) against the emulator.
import { runActionsBench } from './actions-common.js';

export function run(): Promise<void> {
  return runActionsBench('google-actions', 'google', /^\/tasks\/v1\//);
}
