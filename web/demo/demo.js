// The demo portal's page script: plain JavaScript, no build step. It talks to the portal
// back-end only (/api/… and, for the simulated handset, /phone/…); the back-end holds the
// tenant key and calls callverify. Status changes arrive by long-poll: each request is
// answered as soon as something changes, so there is no polling timer.
'use strict';

const t = JSON.parse(document.getElementById('strings').textContent);
const lang = document.documentElement.lang;
const $ = (id) => document.getElementById(id);
const FINAL = ['approved', 'failed', 'expired', 'canceled', 'fraud_reported'];
const CALL_OVER = ['completed', 'busy', 'no-answer', 'failed', 'canceled'];

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    return { ok: false, status: 0, body: { detail: t.error } };
  }
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = null; }
  return { ok: response.ok, status: response.status, body: parsed };
}

// The words of a problem+json answer: callverify's own detail, else its title.
function problemText(answer) {
  const p = answer.body || {};
  return p.detail || p.title || t.error;
}

function show(id, text, kind) {
  const el = $(id);
  el.textContent = text || '';
  el.hidden = !text;
  el.dataset.kind = kind || 'info';
}

// ---- Methods and the default sign-in method ----

async function loadMethods() {
  const answer = await api('GET', '/api/methods');
  if (!answer.ok) { show('message', problemText(answer), 'error'); return; }
  const { methods, options } = answer.body;
  const current = answer.body.default_method;
  const list = $('methods');
  list.replaceChildren();
  const defaultHolder = methods.find((m) => m.options.includes(current));
  for (const m of methods) {
    const item = document.createElement('li');
    const kind = document.createElement('span');
    kind.className = 'kind';
    kind.textContent = t.kinds[m.kind] || m.kind;
    const detail = document.createElement('span');
    detail.className = 'detail';
    detail.textContent = m.detail;
    item.append(kind, detail);
    // An empty cell when not the default keeps the Delete buttons in one column.
    const badge = document.createElement('span');
    if (m === defaultHolder) {
      badge.className = 'badge';
      badge.textContent = t.default_badge;
    }
    item.append(badge);
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'link';
    remove.textContent = t.delete;
    remove.addEventListener('click', () => deleteMethod(m.id));
    item.append(remove);
    list.append(item);
  }
  $('no-methods').hidden = methods.length > 0;

  const select = $('default-method');
  select.replaceChildren();
  const none = new Option(t.default_none, '');
  none.disabled = true;
  if (!current) select.append(none);
  for (const option of options) {
    const holder = methods.find((m) => m.options.includes(option));
    const label = (t.options[option] || option) + (holder && holder.kind === 'phone' ? ' ' + holder.detail : '');
    select.append(new Option(label, option, false, option === current));
  }
  select.value = current || '';
}

async function deleteMethod(id) {
  show('default-message', '');
  const answer = await api('DELETE', '/api/methods/' + encodeURIComponent(id));
  show('message', answer.ok ? t.deleted : problemText(answer), answer.ok ? 'info' : 'error');
  await loadMethods();
}

$('default-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const answer = await api('PUT', '/api/default-method', { default_method: $('default-method').value });
  show('default-message', answer.ok ? t.default_changed : problemText(answer), answer.ok ? 'info' : 'error');
  await loadMethods();
});

// ---- Adding a method ----

$('add-method').addEventListener('click', () => {
  $('add-panel').hidden = false;
  show('call-status', '');
  $('method-kind').focus();
});
$('cancel-add').addEventListener('click', () => { $('add-panel').hidden = true; });

function kindChanged() {
  const kind = $('method-kind').value;
  const phone = kind === 'phone';
  $('phone-fields').hidden = !phone;
  $('call-me').hidden = !phone;
  $('add-other').hidden = phone;
  $('name-field').hidden = phone || kind === 'security_questions';
  $('name-label').textContent = kind === 'email' ? t.email_address : t.name;
  $('method-name').type = kind === 'email' ? 'email' : 'text';
}
$('method-kind').addEventListener('change', kindChanged);

$('add-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  show('message', '');
  if ($('method-kind').value === 'phone') return callMe();
  const answer = await api('POST', '/api/methods', { kind: $('method-kind').value, name: $('method-name').value });
  show('message', answer.ok ? t.added : problemText(answer), answer.ok ? 'info' : 'error');
  if (answer.ok) { $('add-panel').hidden = true; $('method-name').value = ''; }
  await loadMethods();
});

// ---- "Call me": the registration call, followed by long-poll ----

async function callMe() {
  show('default-message', '');
  $('call-me').disabled = true;
  show('call-status', t.status_calling);
  const answer = await api('POST', '/api/calls', {
    country: $('country').value, number: $('phone-number').value, lang,
  });
  if (!answer.ok) {
    $('call-me').disabled = false;
    show('call-status', problemText(answer), 'error');
    if (answer.body && answer.body.type && answer.body.type.endsWith('/user-blocked')) $('block').hidden = false;
    return;
  }
  const id = answer.body.id;
  followPhone(id);
  await followStatus(id, answer.body);
  $('call-me').disabled = false;
}

function statusText(v) {
  if (v.status === 'failed') return t['reason_' + v.reason] || t.failed;
  return t['status_' + v.status] || v.status;
}

async function followStatus(id, first) {
  let v = first;
  show('call-status', statusText(v), 'progress');
  while (!FINAL.includes(v.status)) {
    const answer = await api('GET', `/api/calls/${id}?known=${encodeURIComponent(v.status)}`);
    if (!answer.ok) { show('call-status', problemText(answer), 'error'); return; }
    v = answer.body;
    show('call-status', statusText(v), 'progress');
  }
  const good = v.status === 'approved';
  show('call-status', statusText(v), good ? 'success' : 'error');
  if (v.status === 'fraud_reported') $('block').hidden = false;
  if (good) $('phone-number').value = '';
  await loadMethods();
}

// ---- The virtual phone (simulated handset; a real user holds a real phone) ----

let phoneCall = null;

async function followPhone(id) {
  phoneCall = id;
  $('phone').hidden = false;
  let version = '';
  for (;;) {
    const answer = await api('GET', `/phone/${id}?since=${encodeURIComponent(version)}`);
    if (!answer.ok || phoneCall !== id) return;
    const view = answer.body;
    version = view.version;
    renderPhone(view);
    if (view.status && CALL_OVER.includes(view.status)) break;
  }
  // Leave the last words readable for a moment, then put the phone away.
  setTimeout(() => { if (phoneCall === id) $('phone').hidden = true; }, 2500);
}

function renderPhone(view) {
  const state = $('phone-state');
  const ringing = ['queued', 'ringing'].includes(view.status);
  const over = CALL_OVER.includes(view.status);
  state.textContent = ringing ? t.phone_ringing : over ? t.phone_ended : view.status ? t.phone_in_call : t.phone_idle;
  $('phone').classList.toggle('ringing', ringing);
  const spoken = view.speaking || view.said[view.said.length - 1];
  $('phone-speech').textContent = spoken ? spoken.text : '';
  $('phone-keys').textContent = view.pressed.join(' ');
}

for (const key of document.querySelectorAll('.key')) {
  key.addEventListener('click', () => {
    if (phoneCall) api('POST', `/phone/${phoneCall}/keys`, { key: key.dataset.key });
  });
}
$('hang-up').addEventListener('click', () => {
  if (phoneCall) api('POST', `/phone/${phoneCall}/hang-up`);
});

// ---- The fraud block (demo: the portal back-end holds an admin key for this) ----

$('lift-block').addEventListener('click', async () => {
  const answer = await api('DELETE', '/api/block');
  show('message', answer.ok ? t.block_lifted : problemText(answer), answer.ok ? 'info' : 'error');
  if (answer.ok) $('block').hidden = true;
});

kindChanged();
loadMethods();
