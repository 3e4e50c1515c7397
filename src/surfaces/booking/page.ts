// The booking page's HTML, server-rendered: the times to choose from, the confirmation, and the plain
// pages for a link that is expired, used or not valid. Mobile-first, a few KB, one small script that
// shows the times in the browser's own zone and follows a booking until its invitation is out. A link
// about a session shows it ("Change your appointment") and confirms its move from the old time.
// Nothing here names a diagnosis, and the therapist's other sessions never show (only "evening").
import { DateTime } from 'luxon';
import { zoneLabel } from '../../domain/time.js';
import type { BookingPage, BookingView } from '../../engine/booking.js';
import type { Mode } from '../../scheduling/slots.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const dayText = (ms: number, zone: string) => DateTime.fromMillis(ms, { zone, locale: 'en' }).toFormat('cccc d LLLL');
const timeText = (ms: number, zone: string) => DateTime.fromMillis(ms, { zone, locale: 'en' }).toFormat('h:mm a');

const MODE_TEXT: Record<Mode, string> = { in_person: 'In person', telehealth: 'Video call' };

const STYLE = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f6f7f9}
main{max-width:34rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;line-height:1.25;margin:.5rem 0 1rem}
p{margin:.5rem 0}
.card{background:#fff;border:1px solid #d0d5dd;border-radius:.75rem;padding:1rem;margin:1rem 0}
fieldset{border:0;margin:1rem 0;padding:0}
legend{font-weight:600;margin-bottom:.5rem;padding:0}
ul{list-style:none;margin:0;padding:0}
li{margin:.5rem 0}
.opt{display:flex;gap:.75rem;align-items:center;background:#fff;border:1px solid #98a2b3;border-radius:.75rem;padding:.75rem 1rem;min-height:3rem;cursor:pointer}
.opt input{width:1.25rem;height:1.25rem;margin:0;flex:none}
.opt:has(input:checked){border-color:#0b57d0;box-shadow:0 0 0 2px #0b57d0}
.opt:has(input:disabled){opacity:.5;cursor:not-allowed}
.when{display:flex;flex-direction:column}
.day{font-weight:600}
.tag{font-size:.875rem;color:#475467}
.modes{display:flex;gap:.5rem;flex-wrap:wrap}
.modes .opt{flex:1 1 10rem}
button,.button{display:block;width:100%;font:inherit;font-weight:600;text-align:center;text-decoration:none;color:#fff;background:#0b57d0;border:0;border-radius:.75rem;padding:.875rem 1rem;margin:1rem 0;cursor:pointer}
.button.secondary{color:#0b57d0;background:#fff;border:1px solid #0b57d0}
.notice{border-left:4px solid #b54708;background:#fffaeb;padding:.75rem 1rem;border-radius:.25rem}
.muted{color:#475467;font-size:.875rem}
:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}
`;

// The times are written again in the browser's zone and its own locale's format (a 12- or 24-hour clock);
// an element with a start and no end (a session's current or former time) shows only its start.
const SCRIPT = `(function(){
var b=document.body,tz;try{tz=Intl.DateTimeFormat().resolvedOptions().timeZone}catch(e){}
var f=document.querySelector('input[name=tz]');if(f&&tz)f.value=tz;
if(tz){
var d=new Intl.DateTimeFormat(undefined,{weekday:'long',day:'numeric',month:'long',timeZone:tz}),t=new Intl.DateTimeFormat(undefined,{hour:'numeric',minute:'2-digit',timeZone:tz});
document.querySelectorAll('[data-start]').forEach(function(el){var s=new Date(+el.getAttribute('data-start')),e=el.getAttribute('data-end');
el.querySelector('.day').textContent=d.format(s);el.querySelector('.time').textContent=t.format(s)+(e?' \\u2013 '+t.format(new Date(+e)):'')});
document.querySelectorAll('.zone').forEach(function(el){el.textContent=tz==='UTC'?'UTC':tz.split('/').pop().replace(/_/g,' ')+' time'})}
function modes(){var m=document.querySelector('input[name=mode]:checked');if(!m)return;
document.querySelectorAll('input[name=start]').forEach(function(i){var ok=(' '+i.getAttribute('data-modes')+' ').indexOf(' '+m.value+' ')>=0;i.disabled=!ok;if(!ok)i.checked=false})}
document.querySelectorAll('input[name=mode]').forEach(function(i){i.addEventListener('change',modes)});modes();
var st=b.getAttribute('data-status');if(st==='confirming'){var n=0,p=function(){fetch(location.pathname.replace(/\\/$/,'')+'/status',{headers:{accept:'application/json'}}).then(function(r){return r.json()}).then(function(j){
if(j.status==='confirmed'){var x=document.getElementById('status');x.textContent=x.getAttribute('data-done');b.setAttribute('data-status','confirmed')}
else if(j.status==='failed'){location.reload()}else if(++n<60)setTimeout(p,2000)}).catch(function(){if(++n<60)setTimeout(p,4000)})};setTimeout(p,1500)}
})();`;

function layout(o: { title: string; zone?: string; status?: string; nonce: string; body: string }): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">
<title>${esc(o.title)}</title><style nonce="${o.nonce}">${STYLE}</style></head>
<body${o.zone ? ` data-zone="${esc(o.zone)}"` : ''}${o.status ? ` data-status="${o.status}"` : ''}><main>
${o.body}
</main><script nonce="${o.nonce}">${SCRIPT}</script></body></html>`;
}

/** A start alone (a session's current or former time), in `zone`; the script rewrites it in the browser's. */
const startOnly = (ms: number, zone: string) => `<span class="day">${esc(dayText(ms, zone))}</span>, <span class="time">${esc(timeText(ms, zone))}</span>`;

/**
 * The times to choose from; `notice` says why the client sees them again (a time just taken). For a
 * link about a session (page.moving): "Change your appointment", its current time, and times to move
 * it to in the way it is held (a move keeps in person or video).
 */
export function chooserPage(o: { action: string; page: BookingPage; nonce: string; notice?: string }): string {
  const { page } = o;
  const zone = page.clientZone ?? page.zone;
  const moving = page.moving;
  const modes = moving ? [moving.mode] : page.type.modes;
  const modeField =
    modes.length > 1
      ? `<fieldset><legend>How would you like to meet?</legend><div class="modes">${modes
          .map((m, i) => `<label class="opt"><input type="radio" name="mode" value="${m}"${i === 0 ? ' checked' : ''}> ${MODE_TEXT[m]}</label>`)
          .join('')}</div></fieldset>`
      : // A moved in-person session stays where it is (unless a time's own place says otherwise): no default place named.
        `<input type="hidden" name="mode" value="${modes[0]}"><p>${MODE_TEXT[modes[0]!]}${modes[0] === 'in_person' && !moving && page.locations[0] ? ` at ${esc(page.locations[0].name)}` : ''}.</p>`;
  const slots = page.suggestions
    .slice()
    .sort((a, b) => a.start - b.start)
    .map((s, i) => {
      const tag = s.window === 'flexible' ? (s.local.weekday === 'sat' || s.local.weekday === 'sun' ? 'Weekend' : 'Evening') : '';
      const place = s.location ? page.locations.find((l) => l.id === s.location)?.name : undefined;
      return `<li><label class="opt" data-start="${s.start}" data-end="${s.end}"><input type="radio" name="start" value="${new Date(s.start).toISOString()}" data-modes="${s.modes.join(' ')}"${i === 0 ? ' required' : ''}><span class="when"><span class="day">${esc(dayText(s.start, zone))}</span><span class="time">${esc(timeText(s.start, zone))} – ${esc(timeText(s.end, zone))}</span>${tag || place ? `<span class="tag">${[tag, place ? `in person at ${esc(place)}` : ''].filter(Boolean).join(' · ')}</span>` : ''}</span></label></li>`;
    })
    .join('\n');
  const heading = moving ? 'Change your appointment' : 'Choose a new time';
  const body = `<h1>${heading}</h1>
<p>${esc(page.type.name)} with ${esc(page.therapistName)}, ${page.type.minutes} minutes.</p>
${moving ? `<p class="card" data-start="${moving.start.getTime()}">Now: ${startOnly(moving.start.getTime(), zone)} — choose a new time below. Your current time stays booked until you choose.</p>` : ''}
${o.notice ? `<p class="notice" role="alert">${esc(o.notice)}</p>` : ''}
${
  page.suggestions.length === 0
    ? `<div class="card"><p>There are no free times online right now.${moving ? ' Your appointment stays as it is.' : ''}</p><p>Please contact ${esc(page.practiceName)} and they will find a time with you.</p></div>`
    : `<form method="post" action="${esc(o.action)}">
<input type="hidden" name="tz" value="">
${modeField}
<fieldset><legend>Available times <span class="muted">(<span class="zone">${esc(zoneLabel(zone))}</span>)</span></legend>
<ul>
${slots}
</ul></fieldset>
<button type="submit">${moving ? 'Move to this time' : 'Book this time'}</button>
<p class="muted">${moving ? `You will get the updated invitation by email from ${esc(page.therapistName)}.` : `You will get a calendar invitation by email from ${esc(page.therapistName)}.`}</p>
</form>`
}`;
  return layout({ title: `${moving ? 'Change your appointment' : 'Choose a time'} – ${page.practiceName}`, zone, nonce: o.nonce, body });
}

/**
 * The booking made (or the session moved, from when to when): when, how, and the .ics; while its
 * invitation (or the update) is being sent, says so and follows it.
 */
export function confirmationPage(o: { booking: BookingView; therapistName: string; practiceName: string; icsHref: string; nonce: string }): string {
  const b = o.booking;
  const zone = b.clientZone ?? b.zone;
  const done = b.moved ? 'The updated invitation is on its way to your inbox.' : 'Your invitation is on its way to your inbox.';
  const status =
    b.status === 'confirmed'
      ? done
      : b.moved
        ? 'We are changing it on the calendar now; the updated invitation will follow by email.'
        : 'We are adding it to the calendar now; your invitation will follow by email.';
  const how = b.mode === 'telehealth' ? 'Video call: the link to join is in your invitation.' : `In person${b.location ? ` at ${esc(b.location)}` : ''}.`;
  const heading = b.moved ? 'Your appointment has been moved' : "You're booked";
  const from = b.moved && b.movedFrom ? `<p class="moved" data-start="${b.movedFrom.getTime()}">Moved from ${startOnly(b.movedFrom.getTime(), zone)} to:</p>\n` : '';
  const body = `<h1>${heading}</h1>
${from}<div class="card" data-start="${b.start.getTime()}" data-end="${b.end.getTime()}">
<p><span class="day">${esc(dayText(b.start.getTime(), zone))}</span><br><span class="time">${esc(timeText(b.start.getTime(), zone))} – ${esc(timeText(b.end.getTime(), zone))}</span> <span class="muted">(<span class="zone">${esc(zoneLabel(zone))}</span>)</span></p>
<p>${esc(b.typeName)} with ${esc(o.therapistName)}</p>
<p>${how}</p>
</div>
<p id="status" role="status" aria-live="polite" data-done="${esc(done)}">${status}</p>
<a class="button secondary" href="${esc(o.icsHref)}" download="appointment.ics">Add to my calendar (.ics)</a>
<p class="muted">Need to change it? Reply to the invitation or contact ${esc(o.practiceName)}.</p>`;
  return layout({ title: `${b.moved ? 'Moved' : 'Booked'} – ${o.practiceName}`, zone, status: b.status, nonce: o.nonce, body });
}

/** A page that only explains (expired, not valid, not available, something went wrong). */
export function messagePage(o: { title: string; lines: string[]; nonce: string }): string {
  return layout({ title: o.title, nonce: o.nonce, body: `<h1>${esc(o.title)}</h1>\n${o.lines.map((l) => `<p>${esc(l)}</p>`).join('\n')}` });
}
