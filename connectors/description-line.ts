// Our one line at the end of an event's description ("Need to change this time? <booking url>"): found, written,
// replaced and removed in plain text or in HTML, every other byte of the therapist's text left as it was. Pure but for
// writeLineConditionally, the read-and-conditional-write loop both connectors run with their own calls.
//
// How a line is ours (the "marker"), in order:
// - HTML we wrote: a <p data-sk="change-line"> element. The attribute does not show to the reader.
// - Any format, even after an editor stripped the attribute or turned our <p> into <div>/<br> lines (Google Calendar's
//   web editor and Outlook rewrite the HTML they save): a line or block whose whole visible text is one of the known
//   texts, a space, and an http(s) URL whose path begins /book/ (any host: the product's address may change). The
//   therapist's own text that mentions "Need to change …" inside a longer paragraph, or links elsewhere, is not ours.
// We store no description (DESIGN.md, Privacy): the line is recognised from the text alone, never from a copy of ours.

import { RetryAfter } from './errors.js';

/** The text the product writes before the link, and which is recognised even when a caller passes another one. */
export const DEFAULT_LINE_TEXT = 'Need to change this time?';
/** The attribute (and value) that marks our element in HTML. */
export const LINE_ATTRIBUTE = 'data-sk';
export const LINE_ATTRIBUTE_VALUE = 'change-line';
/** What a booking link's path starts with. */
export const BOOKING_PATH_PREFIX = '/book/';

export type DescriptionFormat = 'text' | 'html';

export interface DescriptionLine {
  text: string;
  url: string;
}

export interface DescriptionLineResult {
  /** The whole description to write back ('' when nothing is left). */
  description: string;
  /** False when the description already was what was asked (nothing to write, no update to anyone). */
  changed: boolean;
}

/** One of our lines found in a description: the characters it takes up, and what it says (null: marked, but edited into something else). */
export interface FoundLine {
  start: number;
  end: number;
  line: DescriptionLine | null;
}

/**
 * Whether a description is HTML. Google's Event.description "Can contain HTML" (refs/google-calendar-v3-discovery.json)
 * and its web editor writes HTML there; the API writes whatever it is given. HTML when it has a tag of the kinds editors
 * write, or a character reference; otherwise plain text.
 */
export function looksLikeHtml(description: string): boolean {
  return (
    /<\/?(?:a|b|i|u|s|em|strong|span|font|p|div|br|hr|ul|ol|li|table|tbody|tr|td|th|h[1-6]|blockquote|pre|html|body|head|meta|img|sub|sup|center)(?:\s[^<>]*)?\/?>/i.test(description) ||
    /&(?:amp|lt|gt|quot|apos|nbsp|#\d{1,7}|#x[0-9a-f]{1,6});/i.test(description)
  );
}

/**
 * The description with our line set to `line` (a new one replacing any of ours, wherever it is), or with every line of
 * ours removed (null). Writing a line into a description that has none appends it after the therapist's text; removing
 * it afterwards gives back exactly the text there was. `changed` is false when the description already had just that line.
 * `alsoRecognise`: earlier texts of the line (a practice that changed its wording), recognised as ours too.
 */
export function setDescriptionLine(
  description: string | null | undefined,
  line: DescriptionLine | null,
  format: DescriptionFormat,
  alsoRecognise: readonly string[] = [],
): DescriptionLineResult {
  const current = description ?? '';
  const wanted = line === null ? null : checkLine(line);
  const texts = [DEFAULT_LINE_TEXT, ...(wanted ? [wanted.text] : []), ...alsoRecognise.map(collapse)];
  const found = findDescriptionLines(current, format, texts);
  const last = found.at(-1);
  if (wanted && found.length === 1 && last?.line && last.line.text === wanted.text && last.line.url === wanted.url) {
    return { description: current, changed: false };
  }
  if (!wanted && found.length === 0) return { description: current, changed: false };
  let out = current;
  // From the last to the first, so that the earlier positions stay right.
  for (let i = found.length - 1; i >= 0; i--) {
    const f = found[i]!;
    if (wanted && i === found.length - 1) out = out.slice(0, f.start) + render(wanted, format) + out.slice(f.end);
    else out = format === 'html' ? removeHtml(out, f) : removeText(out, f);
  }
  if (wanted && found.length === 0) out = append(out, wanted, format);
  return { description: out, changed: out !== current };
}

/** Every line of ours in the description, in order (see the module's opening for what counts as ours). */
export function findDescriptionLines(description: string, format: DescriptionFormat, texts: readonly string[] = [DEFAULT_LINE_TEXT]): FoundLine[] {
  return format === 'html' ? findInHtml(description, texts) : findInText(description, texts);
}

// ---------------------------------------------------------------------------------------------------------------------
// The line itself

const MAX_TEXT = 200;

/** A line we can write and recognise again: one line of text, and an http(s) booking URL (as the URL parser writes it). */
function checkLine(line: DescriptionLine): DescriptionLine {
  const text = collapse(line.text);
  if (text === '' || text.length > MAX_TEXT || /[\u0000-\u001f\u007f]/.test(line.text)) {
    throw new RangeError(`the description line's text must be one line of 1 to ${MAX_TEXT} characters`);
  }
  let url: URL;
  try {
    url = new URL(line.url.trim());
  } catch {
    throw new RangeError('the description line needs an absolute URL');
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || !url.pathname.startsWith(BOOKING_PATH_PREFIX)) {
    throw new RangeError(`the description line's URL must be http(s) with a path starting ${BOOKING_PATH_PREFIX}: it is how the line is recognised`);
  }
  // href percent-encodes spaces, quotes and angle brackets: the URL stays one word of plain text.
  return { text, url: url.href };
}

/** Whitespace (non-breaking spaces too) collapsed to single spaces, trimmed. */
function collapse(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** The line's visible text, when it is exactly one of `texts`, a space and a booking URL. */
function asOurLine(visible: string, texts: readonly string[]): DescriptionLine | null {
  const m = /^(.*\S)\s+(https?:\/\/\S+)$/i.exec(collapse(visible));
  if (!m || !texts.includes(m[1]!)) return null;
  try {
    const url = new URL(m[2]!);
    return url.pathname.startsWith(BOOKING_PATH_PREFIX) ? { text: m[1]!, url: m[2]! } : null;
  } catch {
    return null;
  }
}

function render(line: DescriptionLine, format: DescriptionFormat): string {
  if (format === 'text') return `${line.text} ${line.url}`;
  return `<p ${LINE_ATTRIBUTE}="${LINE_ATTRIBUTE_VALUE}">${escapeText(line.text)} <a href="${escapeAttribute(line.url)}">${escapeText(line.url)}</a></p>`;
}

function append(description: string, line: DescriptionLine, format: DescriptionFormat): string {
  if (description === '') return render(line, format);
  if (format === 'text') {
    // A blank line before ours, in the text's own line-break style; removeText takes exactly these back. After a
    // lone CR a LF would pair with it into one CRLF break, so CRLF is written there.
    const br = description.includes('\r\n') || description.endsWith('\r') ? '\r\n' : '\n';
    return `${description}${br}${br}${render(line, format)}`;
  }
  // A block of its own: inside <body> when the HTML is a whole document (Graph's bodies are), else at the end.
  const close = description.toLowerCase().lastIndexOf('</body');
  return close < 0 ? description + render(line, format) : description.slice(0, close) + render(line, format) + description.slice(close);
}

export function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function escapeAttribute(s: string): string {
  return escapeText(s).replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]{1,6}|#\d{1,7}|[a-z]+);/gi, (all, ref: string) => {
    if (ref[0] === '#') {
      const code = ref[1] === 'x' || ref[1] === 'X' ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : all;
    }
    return NAMED[ref.toLowerCase()] ?? all;
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// Plain text

const LINE_BREAK = /\r\n|\n|\r/g;

function findInText(s: string, texts: readonly string[]): FoundLine[] {
  const out: FoundLine[] = [];
  let start = 0;
  const visit = (end: number): void => {
    const line = asOurLine(s.slice(start, end), texts);
    if (line) out.push({ start, end, line });
  };
  for (const m of s.matchAll(LINE_BREAK)) {
    visit(m.index);
    start = m.index + m[0].length;
  }
  visit(s.length);
  return out;
}

/**
 * Takes a line out with the line breaks that set it apart: at the end, up to two before it (the blank line append
 * wrote, so the therapist's text comes back exactly); elsewhere, up to two after it (the paragraph that followed moves up).
 */
function removeText(s: string, f: FoundLine): string {
  const before = s.slice(0, f.start);
  const after = s.slice(f.end);
  if (/^\s*$/.test(after)) return before.replace(/(?:\r\n|\n|\r){1,2}$/, '') + after;
  return before + after.replace(/^(?:\r\n|\n|\r){1,2}/, '');
}

// ---------------------------------------------------------------------------------------------------------------------
// HTML

interface Tag {
  start: number;
  end: number;
  /** Lower-case name; '' for comments, doctypes and conditional comments. */
  name: string;
  closing: boolean;
  attributes: string;
}

/** Tags that end a line of visible text (block elements and <br>). */
const BLOCK = new Set([
  'address', 'article', 'aside', 'blockquote', 'body', 'br', 'center', 'dd', 'div', 'dl', 'dt', 'footer', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6',
  'head', 'header', 'hr', 'html', 'li', 'ol', 'p', 'pre', 'section', 'table', 'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'ul',
]);

const TAG = /<!--[\s\S]*?-->|<![^>]*>|<(\/?)([a-zA-Z][\w:-]*)((?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*)\s*\/?>/g;

function tagsOf(s: string): Tag[] {
  const out: Tag[] = [];
  for (const m of s.matchAll(TAG)) {
    out.push({ start: m.index, end: m.index + m[0].length, name: (m[2] ?? '').toLowerCase(), closing: m[1] === '/', attributes: m[3] ?? '' });
  }
  return out;
}

function isMarked(tag: Tag): boolean {
  return !tag.closing && new RegExp(`(?:^|\\s)${LINE_ATTRIBUTE}\\s*=\\s*(?:"${LINE_ATTRIBUTE_VALUE}"|'${LINE_ATTRIBUTE_VALUE}'|${LINE_ATTRIBUTE_VALUE}(?![^\\s>]))`, 'i').test(tag.attributes);
}

/** The visible text of a stretch of HTML: tags and comments dropped, character references decoded. */
function visibleText(s: string, from: number, to: number, tags: readonly Tag[]): string {
  let out = '';
  let at = from;
  for (const t of tags) {
    if (t.end <= from || t.start >= to) continue;
    out += s.slice(at, Math.max(at, t.start));
    at = Math.max(at, t.end);
  }
  out += s.slice(at, to);
  return decodeEntities(out);
}

function findInHtml(s: string, texts: readonly string[]): FoundLine[] {
  const tags = tagsOf(s);
  const found: FoundLine[] = [];
  // 1. Elements carrying our attribute: the whole element, up to its matching end tag.
  for (let i = 0; i < tags.length; i++) {
    const open = tags[i]!;
    if (!isMarked(open) || found.some((f) => open.start < f.end)) continue;
    let depth = 0;
    let close: Tag | undefined;
    for (let j = i + 1; j < tags.length; j++) {
      const t = tags[j]!;
      if (t.name !== open.name) continue;
      if (!t.closing) depth++;
      else if (depth === 0) {
        close = t;
        break;
      } else depth--;
    }
    if (!close) continue;
    // Marked, but no longer reading as our line (the therapist typed into it and the editor kept the
    // attribute): theirs now, left alone.
    const line = asOurLine(visibleText(s, open.end, close.start, tags), texts);
    if (!line) continue;
    found.push({ start: open.start, end: close.end, line });
  }
  // 2. Lines of visible text between block tags that read as our line, their markup rewritten by an editor.
  const blocks = tags.filter((t) => BLOCK.has(t.name));
  for (let i = 0; i <= blocks.length; i++) {
    const prev = blocks[i - 1];
    const next = blocks[i];
    const from = prev?.end ?? 0;
    const to = next?.start ?? s.length;
    if (to <= from || found.some((f) => from < f.end && to > f.start)) continue;
    const line = asOurLine(visibleText(s, from, to, tags), texts);
    if (!line) continue;
    found.push({ ...blockSpan(s, prev, next, from, to), line });
  }
  return found.sort((a, b) => a.start - b.start);
}

/** What a line found between two block tags takes up: its whole element, or the <br> that opens or closes it, or just itself. */
function blockSpan(s: string, prev: Tag | undefined, next: Tag | undefined, from: number, to: number): { start: number; end: number } {
  if (prev && next && !prev.closing && next.closing && prev.name === next.name && prev.name !== 'br' && prev.name !== 'body' && prev.name !== 'html') {
    return { start: prev.start, end: next.end };
  }
  if (prev?.name === 'br') {
    // At the end, the blank line before it goes too (two <br>, as an editor writes a new paragraph).
    const trailing = /^\s*(?:<\/[^>]+>\s*)*$/.test(s.slice(to));
    const earlier = trailing ? /<br\s*\/?>\s*$/i.exec(s.slice(0, prev.start)) : null;
    return { start: earlier ? earlier.index : prev.start, end: to };
  }
  if (next?.name === 'br') return { start: from, end: next.end };
  return { start: from, end: to };
}

/** Takes a found line out of HTML: its span only (an element or <br> line stands on its own: no separator to mend). */
function removeHtml(s: string, f: FoundLine): string {
  return s.slice(0, f.start) + s.slice(f.end);
}

/**
 * Reads the description and its version, sets our line in it and writes it back only if the version
 * is still the one read (If-Match). A conflict (412: another write came between) reads again and
 * applies the line to what is there now, `retries` times, then RetryAfter, refused: a 412 wrote
 * nothing. Nothing is written when the line is already as asked, so a repeat of the call (after a
 * lost answer) writes, and notifies, no one. `changed`: whether a write of this call took effect.
 */
export async function writeLineConditionally<V>(
  io: {
    read(): Promise<{ description: string; format: DescriptionFormat; version: V }>;
    write(description: string, version: V): Promise<void>;
    /** The platform's answer to a stale If-Match. */
    isConflict(err: unknown): boolean;
  },
  line: DescriptionLine | null,
  retries: number,
): Promise<{ changed: boolean }> {
  let sent = false;
  for (let attempt = 0; ; attempt++) {
    const { description, format, version } = await io.read();
    const next = setDescriptionLine(description, line, format);
    // Already as asked: by us, when an earlier attempt of this call was written and its answer lost.
    if (!next.changed) return { changed: sent };
    try {
      sent = true;
      await io.write(next.description, version);
      return { changed: true };
    } catch (err) {
      if (!io.isConflict(err)) throw err;
      if (attempt >= retries) throw new RetryAfter(null, `the event kept changing while its description was written (412 Precondition Failed ${attempt + 1} times)`, true);
    }
  }
}
