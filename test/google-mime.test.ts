// The MIME builder of the Gmail connector (connectors/google/mime.ts): RFC 2047 encoded-words, folding, line
// lengths, quoted-printable, attachments, and that no header can be injected; read back with mailparser.
import { simpleParser } from 'mailparser';
import { describe, expect, test } from 'vitest';
import { addressHeader, base64Lines, buildMessage, contentType, encodeWords, MimeError, quotedPrintable, rfc5322Date, unstructuredHeader } from '../connectors/google/mime.js';
import type { OutgoingMail } from '../connectors/port.js';

const decodeWords = (header: string): string =>
  header
    .replace(/^[^:]+:/, '')
    .split(/\r\n/)
    .join('')
    .trim()
    .split(' ')
    .map((w) => {
      const m = /^=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=$/.exec(w);
      return m ? Buffer.from(m[1]!, 'base64') : null;
    })
    .reduce<Buffer>((acc, b) => (b ? Buffer.concat([acc, b]) : acc), Buffer.alloc(0))
    .toString('utf8');

const lines = (s: string) => s.split('\r\n');

describe('headers', () => {
  test('ASCII subjects stay readable; long ones are folded at spaces to lines of at most 78 characters', () => {
    expect(unstructuredHeader('Subject', 'Your session on Monday')).toBe('Subject: Your session on Monday');
    const long = unstructuredHeader('Subject', Array.from({ length: 30 }, (_, i) => `word${i}`).join(' '));
    expect(lines(long).length).toBeGreaterThan(1);
    for (const [i, l] of lines(long).entries()) {
      expect(l.length).toBeLessThanOrEqual(78);
      if (i > 0) expect(l.startsWith(' ')).toBe(true);
    }
  });

  test('non-ASCII text becomes UTF-8 "B" encoded-words of at most 75 characters, never split inside a character', () => {
    const subject = 'Rückfrage – Ihr Termin am Montag, 9. März, bei Praxis Müller-Lüdenscheidt 🌿 '.repeat(3).trim();
    const h = unstructuredHeader('Subject', subject);
    for (const l of lines(h)) expect(l.length).toBeLessThanOrEqual(78);
    for (const w of encodeWords(subject)) expect(w.length).toBeLessThanOrEqual(75);
    expect(decodeWords(h)).toBe(subject);
    expect(h).not.toMatch(/[^\x20-\x7e\r\n]/);
  });

  test('line breaks in a subject or a name cannot start a header of their own', async () => {
    const mail: OutgoingMail = {
      from: { email: 'dr@practice.example', name: 'Dr. A\r\nBcc: spy@evil.example' },
      to: [{ email: 'client@else.example', name: 'Client\nX-Injected: yes' }],
      subject: 'Hello\r\nBcc: spy@evil.example\r\n\r\nbody',
      text: 't',
      html: '<p>h</p>',
    };
    const raw = buildMessage(mail);
    const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
    // Every header line starts a known header or continues one (folding whitespace).
    for (const l of lines(head)) expect(l).toMatch(/^(From|To|Subject|Date|Message-ID|MIME-Version|Content-Type): |^ /);
    const parsed = await simpleParser(raw);
    expect(parsed.bcc).toBeUndefined();
    expect(parsed.headers.has('x-injected')).toBe(false);
    expect(parsed.subject).toBe('Hello Bcc: spy@evil.example body');
    expect(parsed.from?.value).toEqual([{ address: 'dr@practice.example', name: 'Dr. A Bcc: spy@evil.example' }]);
  });

  test('addresses: anything but a plain address is refused; names are atoms, quoted strings or encoded-words', async () => {
    for (const bad of ['a@b.example\r\nBcc: x@y.example', 'a@b.example, c@d.example', '<a@b.example>', 'a b@c.example', 'nobody', 'a@b', '"x"@b.example']) {
      expect(() => addressHeader('To', [{ email: bad }])).toThrow(MimeError);
    }
    expect(() => addressHeader('To', [])).toThrow(MimeError);
    expect(addressHeader('To', [{ email: 'a@b.example' }])).toBe('To: <a@b.example>');
    expect(addressHeader('To', [{ email: 'a@b.example', name: 'Ann Lee' }])).toBe('To: Ann Lee <a@b.example>');
    expect(addressHeader('To', [{ email: 'a@b.example', name: 'Lee, Ann "A." \\ Jr' }])).toBe('To: "Lee, Ann \\"A.\\" \\\\ Jr" <a@b.example>');
    const many = addressHeader('To', [
      { email: 'juergen@else.example', name: 'Jürgen Groß' },
      { email: 'ann@else.example', name: 'Ann Lee' },
      { email: 'bob@else.example', name: 'Bob, the client' },
    ]);
    for (const l of lines(many)) expect(l.length).toBeLessThanOrEqual(78);
    const parsed = await simpleParser(`${many}\r\nSubject: x\r\n\r\nbody`);
    const to = Array.isArray(parsed.to) ? parsed.to.flatMap((t) => t.value) : parsed.to?.value;
    expect(to).toEqual([
      { address: 'juergen@else.example', name: 'Jürgen Groß' },
      { address: 'ann@else.example', name: 'Ann Lee' },
      { address: 'bob@else.example', name: 'Bob, the client' },
    ]);
  });

  test('Date is RFC 5322; content types are checked tokens, text ones get charset=UTF-8', () => {
    expect(rfc5322Date(new Date('2026-03-02T09:05:07Z'))).toBe('Mon, 02 Mar 2026 09:05:07 +0000');
    expect(contentType('text/calendar; method=REQUEST')).toBe('text/calendar; method=REQUEST; charset=UTF-8');
    expect(contentType('Text/Calendar; method=REQUEST; charset=UTF-8')).toBe('text/calendar; method=REQUEST; charset=UTF-8');
    expect(contentType('application/pdf', { name: 'Übersicht.pdf' })).toBe("application/pdf; name*=UTF-8''%C3%9Cbersicht.pdf");
    for (const bad of ['text', 'text/plain\r\nBcc: x@y.example', 'text/plain; charset="a\\"b"', 'te xt/plain', 'text/plain; a b=c']) {
      expect(() => contentType(bad)).toThrow(MimeError);
    }
  });
});

describe('bodies', () => {
  test('quoted-printable: lines of at most 76, "=" and non-ASCII escaped, no space at a line end, decodes back', async () => {
    const text = `Grüße aus der Praxis = 100 %   \nA line that is rather long, ${'and goes on '.repeat(12)}end.\n\ttab\n`;
    const qp = quotedPrintable(text);
    for (const l of lines(qp)) {
      expect(l.length).toBeLessThanOrEqual(76);
      expect(l).not.toMatch(/[ \t]$/);
      expect(l).toMatch(/^[\x20-\x7e\t]*$/);
    }
    expect(qp).toContain('=3D');
    const parsed = await simpleParser(`Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${qp}`);
    expect(parsed.text).toBe(text.replace(/\n/g, '\n'));
  });

  test('base64 in lines of 76', () => {
    const b = base64Lines(Buffer.alloc(1000, 7));
    expect(lines(b).every((l) => l.length <= 76)).toBe(true);
    expect(Buffer.from(lines(b).join(''), 'base64')).toEqual(Buffer.alloc(1000, 7));
  });
});

describe('the whole message', () => {
  const ics = ['BEGIN:VCALENDAR', 'METHOD:REQUEST', 'BEGIN:VEVENT', 'SUMMARY:Sitzung', 'END:VEVENT', 'END:VCALENDAR', ''].join('\r\n');
  const mail: OutgoingMail = {
    from: { email: 'dr.mueller@praxis.example', name: 'Dr. Müller' },
    to: [{ email: 'client@else.example', name: 'Jürgen' }],
    replyTo: { email: 'desk@praxis.example', name: 'Praxis Empfang' },
    subject: 'Rückfrage – Ihr Termin',
    text: 'Guten Tag,\nbitte bestätigen Sie Ihren Termin.\n',
    html: '<p>Guten Tag,</p><p>bitte <b>bestätigen</b> Sie Ihren Termin.</p>',
    attachments: [
      { filename: 'einladung.ics', contentType: 'text/calendar; method=REQUEST', content: ics },
      { filename: 'Übersicht.pdf', contentType: 'application/pdf', content: Buffer.from([0x25, 0x50, 0x44, 0x46, 0, 1, 2, 255]) },
    ],
  };

  test('multipart/mixed with multipart/alternative (text, HTML) and the attachments; CRLF only; short lines', async () => {
    const raw = buildMessage(mail, { date: new Date('2026-03-02T09:00:00Z') });
    expect(raw).not.toMatch(/[^\r]\n/);
    expect(raw).not.toMatch(/[^\x00-\x7f]/);
    const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
    for (const l of lines(head)) expect(l.length).toBeLessThanOrEqual(78);
    for (const l of lines(raw.slice(head.length))) expect(l.length).toBeLessThanOrEqual(78);
    expect(head).toContain('MIME-Version: 1.0');
    expect(head).toMatch(/^Message-ID: <sk\.[0-9a-f]{32}@praxis\.example>$/m);
    expect(head).toContain('Date: Mon, 02 Mar 2026 09:00:00 +0000');

    const p = await simpleParser(raw);
    expect(p.from?.value).toEqual([{ address: 'dr.mueller@praxis.example', name: 'Dr. Müller' }]);
    expect(Array.isArray(p.to) ? undefined : p.to?.value).toEqual([{ address: 'client@else.example', name: 'Jürgen' }]);
    expect(p.replyTo?.value).toEqual([{ address: 'desk@praxis.example', name: 'Praxis Empfang' }]);
    expect(p.subject).toBe('Rückfrage – Ihr Termin');
    expect(p.text).toBe('Guten Tag,\nbitte bestätigen Sie Ihren Termin.\n');
    expect(p.html).toBe(mail.html);
    expect(p.attachments.map((a) => [a.filename, a.contentType])).toEqual([
      ['einladung.ics', 'text/calendar'],
      ['Übersicht.pdf', 'application/pdf'],
    ]);
    expect(p.attachments[0]!.content.toString('utf8')).toBe(ics);
    expect(p.attachments[0]!.headers.get('content-type')).toMatchObject({ value: 'text/calendar', params: { method: 'REQUEST', charset: 'UTF-8' } });
    expect(p.attachments[1]!.content).toEqual(Buffer.from([0x25, 0x50, 0x44, 0x46, 0, 1, 2, 255]));
  });

  test('without From, the Message-ID uses a neutral domain; an attachment needs a name', () => {
    const raw = buildMessage({ ...mail, from: undefined, attachments: [] });
    expect(raw).not.toMatch(/^From:/m);
    expect(raw).toMatch(/^Message-ID: <sk\.[0-9a-f]{32}@sessionkeeper\.invalid>$/m);
    expect(() => buildMessage({ ...mail, attachments: [{ filename: '\r\n', contentType: 'text/plain', content: 'x' }] })).toThrow(MimeError);
  });
});
