// The pure text work behind setDescriptionLine (connectors/description-line.ts): our one line found, written, replaced
// and removed in plain-text and HTML descriptions, the therapist's own text kept byte for byte.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { DEFAULT_LINE_TEXT, findDescriptionLines, looksLikeHtml, setDescriptionLine, type DescriptionLine } from '../connectors/description-line.js';

const LINE: DescriptionLine = { text: DEFAULT_LINE_TEXT, url: 'https://sk.example/book/AbC123' };
const NEXT: DescriptionLine = { text: DEFAULT_LINE_TEXT, url: 'https://sk.example/book/XyZ789' };
const P = (url: string, text = DEFAULT_LINE_TEXT): string => `<p data-sk="change-line">${text} <a href="${url}">${url}</a></p>`;

describe('plain text', () => {
  test('an empty or absent description gets just the line; removing it gives the empty text back', () => {
    for (const empty of [undefined, null, '']) {
      const set = setDescriptionLine(empty, LINE, 'text');
      expect(set).toEqual({ description: `${DEFAULT_LINE_TEXT} ${LINE.url}`, changed: true });
      expect(setDescriptionLine(set.description, null, 'text')).toEqual({ description: '', changed: true });
      expect(setDescriptionLine(empty, null, 'text')).toEqual({ description: '', changed: false });
    }
  });

  test('the line goes after the therapist\'s text, a blank line between; removal gives the text back exactly', () => {
    for (const original of ['Session with Dr. Moss', 'old Mac text\r', 'Room 2\nBring your notes.\n', 'Trailing spaces  ', 'Windows text\r\nsecond line', '\n\nstarts blank', 'x\n\n\n']) {
      const set = setDescriptionLine(original, LINE, 'text');
      const br = original.includes('\r\n') || original.endsWith('\r') ? '\r\n' : '\n';
      expect(set).toEqual({ description: `${original}${br}${br}${DEFAULT_LINE_TEXT} ${LINE.url}`, changed: true });
      expect(setDescriptionLine(set.description, null, 'text')).toEqual({ description: original, changed: true });
    }
  });

  test('a second write replaces the line in place instead of adding one; the same line again changes nothing', () => {
    const first = setDescriptionLine('Room 2', LINE, 'text').description;
    const second = setDescriptionLine(first, NEXT, 'text');
    expect(second).toEqual({ description: `Room 2\n\n${DEFAULT_LINE_TEXT} ${NEXT.url}`, changed: true });
    expect(setDescriptionLine(second.description, NEXT, 'text')).toEqual({ description: second.description, changed: false });
    expect(findDescriptionLines(second.description, 'text')).toHaveLength(1);
    expect(setDescriptionLine(second.description, null, 'text').description).toBe('Room 2');
  });

  test('a new text replaces the old line (the old one is recognised by the default text); a practice\'s former text too', () => {
    const first = setDescriptionLine('Room 2', LINE, 'text').description;
    const reworded = setDescriptionLine(first, { text: 'Rebook here:', url: LINE.url }, 'text');
    expect(reworded.description).toBe(`Room 2\n\nRebook here: ${LINE.url}`);
    // Without telling it the former text, "Rebook here:" is not recognised by a caller using another one …
    expect(setDescriptionLine(reworded.description, { text: 'Change?', url: LINE.url }, 'text').description).toBe(`Room 2\n\nRebook here: ${LINE.url}\n\nChange? ${LINE.url}`);
    // … and is when it is.
    expect(setDescriptionLine(reworded.description, { text: 'Change?', url: LINE.url }, 'text', ['Rebook here:']).description).toBe(`Room 2\n\nChange? ${LINE.url}`);
  });

  test('the therapist\'s own text about changing, other links and other /book/ wording are left alone', () => {
    const original = [
      'Need to change this time? Call me on 555-0100.',
      'Need to change this time? See https://sk.example/book/AbC123 or call.',
      'Need to change this time? https://sk.example/about',
      'Book again: https://sk.example/book/AbC123',
      'need to change this time? https://sk.example/book/lower',
    ].join('\n');
    expect(findDescriptionLines(original, 'text')).toEqual([]);
    const set = setDescriptionLine(original, LINE, 'text');
    expect(set.description).toBe(`${original}\n\n${DEFAULT_LINE_TEXT} ${LINE.url}`);
    expect(setDescriptionLine(set.description, null, 'text').description).toBe(original);
  });

  test('our line is recognised on any host, with extra spaces, and when the therapist wrote after it', () => {
    const edited = `Room 2\n\n  ${DEFAULT_LINE_TEXT}   http://old-host.example:8080/book/Old  \nSee you Tuesday.`;
    expect(findDescriptionLines(edited, 'text')).toEqual([{ start: 8, end: edited.indexOf('\nSee'), line: { text: DEFAULT_LINE_TEXT, url: 'http://old-host.example:8080/book/Old' } }]);
    expect(setDescriptionLine(edited, LINE, 'text').description).toBe(`Room 2\n\n${DEFAULT_LINE_TEXT} ${LINE.url}\nSee you Tuesday.`);
    // Removed from the middle: the paragraph after it moves up.
    expect(setDescriptionLine(edited, null, 'text').description).toBe('Room 2\n\nSee you Tuesday.');
  });

  test('two lines of ours (an edit copied one) become one; removal takes both', () => {
    const twice = `${DEFAULT_LINE_TEXT} ${LINE.url}\n\nRoom 2\n\n${DEFAULT_LINE_TEXT} ${LINE.url}`;
    expect(setDescriptionLine(twice, LINE, 'text')).toEqual({ description: `Room 2\n\n${DEFAULT_LINE_TEXT} ${LINE.url}`, changed: true });
    expect(setDescriptionLine(twice, null, 'text').description).toBe('Room 2');
  });

  test('any text without a line of ours: set then remove is the identity', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', 'B', ' ', '\n', '\r', '\t', '?', ':', '/', 'é', '€', '<', '&') , maxLength: 60 }), (original) => {
        fc.pre(findDescriptionLines(original, 'text').length === 0);
        const set = setDescriptionLine(original, LINE, 'text');
        expect(findDescriptionLines(set.description, 'text')).toHaveLength(1);
        expect(setDescriptionLine(set.description, LINE, 'text').changed).toBe(false);
        expect(setDescriptionLine(set.description, null, 'text').description).toBe(original);
      }),
      { numRuns: 500 },
    );
  });
});

describe('HTML', () => {
  test('a marked paragraph at the end (inside <body> of a whole document, as Graph answers); removal restores the original', () => {
    const google = 'Hello <b>Sam</b>,<br>see you in <a href="https://maps.example/room?a=1&amp;b=2">room 2</a>.';
    const graph = '<html><head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n</head>\r\n<body>\r\n<div>Room 2</div>\r\n</body>\r\n</html>\r\n';
    const setG = setDescriptionLine(google, LINE, 'html');
    expect(setG).toEqual({ description: google + P(LINE.url), changed: true });
    expect(setDescriptionLine(setG.description, null, 'html')).toEqual({ description: google, changed: true });
    const setM = setDescriptionLine(graph, LINE, 'html');
    expect(setM.description).toBe(graph.replace('</body>', `${P(LINE.url)}</body>`));
    expect(setDescriptionLine(setM.description, null, 'html').description).toBe(graph);
  });

  test('an empty HTML body gets just the element; a second write replaces it; the same again changes nothing', () => {
    const first = setDescriptionLine('', LINE, 'html');
    expect(first.description).toBe(P(LINE.url));
    const second = setDescriptionLine(`<div>Room 2</div>${first.description}`, NEXT, 'html');
    expect(second).toEqual({ description: `<div>Room 2</div>${P(NEXT.url)}`, changed: true });
    expect(setDescriptionLine(second.description, NEXT, 'html').changed).toBe(false);
    expect(findDescriptionLines(second.description, 'html')).toHaveLength(1);
    expect(setDescriptionLine(second.description, null, 'html').description).toBe('<div>Room 2</div>');
    expect(setDescriptionLine('<div>Room 2</div>', null, 'html')).toEqual({ description: '<div>Room 2</div>', changed: false });
  });

  test('the URL and text are escaped in the markup, and read back (entities decoded) as the same line', () => {
    const url = "https://sk.example/book/AbC?who=a&b=\"x\"<y>'z";
    const set = setDescriptionLine('<p>Hi</p>', { text: 'Change <this> & that?', url }, 'html');
    // The URL as the URL parser writes it (quotes and angle brackets percent-encoded), & escaped on top.
    expect(set.description).toBe(
      '<p>Hi</p><p data-sk="change-line">Change &lt;this&gt; &amp; that? <a href="https://sk.example/book/AbC?who=a&amp;b=%22x%22%3Cy%3E%27z">https://sk.example/book/AbC?who=a&amp;b=%22x%22%3Cy%3E%27z</a></p>',
    );
    expect(set.description).not.toMatch(/<y>|"x"/);
    expect(setDescriptionLine(set.description, { text: 'Change <this> & that?', url }, 'html').changed).toBe(false);
    expect(setDescriptionLine(set.description, null, 'html', ['Change <this> & that?']).description).toBe('<p>Hi</p>');
  });

  test('without our attribute (stripped by an editor) the line is still ours: a <div>, a <p> with Outlook\'s class, a <br> line', () => {
    const div = `<div>Room 2</div><div><span style="font-size:11pt">${DEFAULT_LINE_TEXT}&nbsp;<a href="${LINE.url}">${LINE.url}</a></span></div>`;
    expect(setDescriptionLine(div, null, 'html').description).toBe('<div>Room 2</div>');
    expect(setDescriptionLine(div, NEXT, 'html').description).toBe(`<div>Room 2</div>${P(NEXT.url)}`);
    expect(setDescriptionLine(div, LINE, 'html').changed).toBe(false);
    const mso = `<p class=MsoNormal>Room 2<o:p></o:p></p><p class=MsoNormal>${DEFAULT_LINE_TEXT} ${LINE.url}<o:p></o:p></p>`;
    expect(setDescriptionLine(mso, null, 'html').description).toBe('<p class=MsoNormal>Room 2<o:p></o:p></p>');
    // Google's editor writes lines with <br>: the line and the blank line before it go.
    const br = `Room 2<br><br>${DEFAULT_LINE_TEXT} <a href="${LINE.url}" target="_blank">${LINE.url}</a>`;
    expect(setDescriptionLine(br, null, 'html').description).toBe('Room 2');
    expect(setDescriptionLine(`${br}<br>See you.`, null, 'html').description).toBe('Room 2<br><br>See you.');
  });

  test('the therapist\'s HTML mentioning changing a time, or linking to /book/ with other words, is untouched', () => {
    const original = [
      `<p>${DEFAULT_LINE_TEXT} Just reply to this invite.</p>`,
      `<p>Need to change this time? <a href="${LINE.url}">Use our page</a> or call.</p>`,
      `<p>Book again: <a href="${LINE.url}">${LINE.url}</a></p>`,
      `<p data-sk="other">${DEFAULT_LINE_TEXT} https://sk.example/about</p>`,
    ].join('');
    expect(findDescriptionLines(original, 'html')).toEqual([]);
    const set = setDescriptionLine(original, LINE, 'html');
    expect(set.description).toBe(original + P(LINE.url));
    expect(setDescriptionLine(set.description, null, 'html').description).toBe(original);
  });

  test('our marked element that the therapist typed other words into is theirs now: kept, our line written after it', () => {
    const edited = `<p>Room 2</p><p data-sk="change-line">Call me instead</p>`;
    expect(findDescriptionLines(edited, 'html')).toEqual([]);
    const set = setDescriptionLine(edited, LINE, 'html').description;
    expect(set.startsWith(edited)).toBe(true);
    expect(findDescriptionLines(set, 'html')).toHaveLength(1);
    expect(setDescriptionLine(set, null, 'html').description).toBe(edited);
    expect(setDescriptionLine(edited, null, 'html')).toMatchObject({ description: edited, changed: false });
  });

  test('any HTML of editors\' pieces without a line of ours: set then remove is the identity', () => {
    const piece = fc.constantFrom('<p>', '</p>', '<div>', '</div>', '<br>', '<br/>', '<b>', '</b>', '<a href="https://x.example/book/q">', '</a>', '&amp;', '&nbsp;', 'Hi', ' ', '\r\n', '?', 'Need to change this time?', 'https://sk.example/book/Q', '<body>', '</body>');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), (pieces) => {
        const original = pieces.join('');
        fc.pre(findDescriptionLines(original, 'html').length === 0);
        const set = setDescriptionLine(original, LINE, 'html');
        expect(findDescriptionLines(set.description, 'html')).toHaveLength(1);
        expect(setDescriptionLine(set.description, LINE, 'html').changed).toBe(false);
        expect(setDescriptionLine(set.description, null, 'html').description).toBe(original);
      }),
      { numRuns: 500 },
    );
  });

  test('comments, head and style are not read as text', () => {
    const doc = `<html><head><style>p{margin:0}</style><!-- ${DEFAULT_LINE_TEXT} ${LINE.url} --></head><body><p>Room 2</p></body></html>`;
    expect(findDescriptionLines(doc, 'html')).toEqual([]);
    const set = setDescriptionLine(doc, LINE, 'html');
    expect(setDescriptionLine(set.description, null, 'html').description).toBe(doc);
  });
});

describe('the line asked for', () => {
  test('is refused when it could not be recognised again', () => {
    expect(() => setDescriptionLine('', { text: DEFAULT_LINE_TEXT, url: 'https://sk.example/other/AbC' }, 'text')).toThrow(RangeError);
    expect(() => setDescriptionLine('', { text: DEFAULT_LINE_TEXT, url: 'ftp://sk.example/book/AbC' }, 'text')).toThrow(RangeError);
    expect(() => setDescriptionLine('', { text: DEFAULT_LINE_TEXT, url: '/book/AbC' }, 'text')).toThrow(RangeError);
    expect(() => setDescriptionLine('', { text: 'two\nlines', url: LINE.url }, 'text')).toThrow(RangeError);
    expect(() => setDescriptionLine('', { text: '   ', url: LINE.url }, 'text')).toThrow(RangeError);
  });
});

test('looksLikeHtml: editors\' tags and character references; plain text with < or & is not HTML', () => {
  expect(looksLikeHtml('Hello<br>there')).toBe(true);
  expect(looksLikeHtml('<a href="https://x.example">x</a>')).toBe(true);
  expect(looksLikeHtml('Tom &amp; Jerry')).toBe(true);
  expect(looksLikeHtml('<html><body></body></html>')).toBe(true);
  expect(looksLikeHtml('I <3 therapy & 2 < 3')).toBe(false);
  expect(looksLikeHtml('Room 2\nBring notes')).toBe(false);
});
