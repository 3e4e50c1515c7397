// Logs never carry client names, emails, event text or tokens, whatever shape the object has.
import { Writable } from 'node:stream';
import { expect, test } from 'vitest';
import { createLogger } from '../src/log.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, log: createLogger({ level: 'debug', destination }) };
}

const secrets = ['Jane Doe', 'jane.doe@example.com', 'Couples session - Doe', '1//0gRefreshToken', 'ya29.AccessToken', 'client-state-secret', 'Private note about grief', 'Oak Street 12', '4/0AuthCode'];

test('names, emails, titles, tokens and notes are redacted at any depth, ids and counts are kept', async () => {
  const { lines, log } = capture();
  log.info(
    {
      calendarId: 'cal-123',
      events: 3,
      event: {
        id: 'evt-9',
        summary: 'Couples session - Doe',
        description: 'Private note about grief',
        location: 'Oak Street 12',
        attendees: [{ email: 'jane.doe@example.com', displayName: 'Jane Doe', responseStatus: 'accepted' }],
        organizer: { email: 'therapist@brightpath.example' },
      },
      nested: { deeper: { still: { refresh_token: '1//0gRefreshToken', Authorization: 'Bearer ya29.AccessToken' } } },
      notification: { clientState: 'client-state-secret' },
      client: { name: 'Jane Doe' },
    },
    'synced a calendar for jane.doe@example.com',
  );
  log.warn({ url: 'https://example.com/cb?code=4/0AuthCode&state=x' }, 'callback');
  log.error({ err: new Error('Invalid attendee email: jane.doe@example.com') }, 'insert failed');
  await new Promise((r) => setImmediate(r));
  const out = lines.join('');
  for (const s of secrets) expect(out).not.toContain(s);
  expect(out).toContain('cal-123');
  expect(out).toContain('evt-9');
  expect(out).toContain('"events":3');
  expect(out).toContain('synced a calendar for [email]');
  expect(out).toContain('Invalid attendee email: [email]');
  expect(JSON.parse(lines[0]!)).toMatchObject({ severity: 'INFO', message: 'synced a calendar for [email]' });
});
