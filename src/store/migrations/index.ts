// The ordered list of migrations. Append only: a landed migration is never edited or removed.
import * as m0001 from './0001_initial.js';
import * as m0002 from './0002_engine.js';
import * as m0003 from './0003_actions.js';
import * as m0004 from './0004_booking.js';
import * as m0005 from './0005_followups.js';

export interface Migration {
  name: string;
  sql: string;
}

export const migrations: readonly Migration[] = [m0001, m0002, m0003, m0004, m0005];
