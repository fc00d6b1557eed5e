/* Tessera UI behaviours. Plain JS (ES2019+), no build step, CSP-safe: no eval, no inline
   handlers; everything hooks onto data attributes, documented in README.md beside this file.
   Pages work without it; htmx 2.0.x and Sortable are used when the page loads them. */
(() => {
  'use strict';
  const d = document, root = d.documentElement;
  const $ = (s, el = d) => el.querySelector(s);
  const $$ = (s, el = d) => Array.from(el.querySelectorAll(s));
  const on = (type, sel, fn, capture) => d.addEventListener(type, e => {
    const el = e.target.closest && e.target.closest(sel);
    if (el) fn(e, el);
  }, capture);
  const hx = () => window.htmx;

  // ---- strings: <html data-i18n='{"key":"text {n}"}'> overrides these English defaults ----
  const EN = {
    required: 'Please fill in this field.', email: 'Enter an email address.', url: 'Enter a web address starting with https://.',
    pattern: 'The format is not valid.', minlength: 'Enter at least {n} characters.', maxlength: 'Enter at most {n} characters.',
    min: 'Enter {n} or more.', max: 'Enter {n} or less.', step: 'Enter a valid value.', bad: 'Enter a valid value.', invalid: 'Check this value.',
    summary: 'Please correct {n} fields.', sep: ': ', unsaved: 'You have unsaved changes. Leave anyway?', network: 'Could not reach the server.',
    error: 'The server answered {n}.', cancel: 'Cancel', confirm: 'Confirm', close: 'Close', apply: 'Apply', back: 'Back',
    op_contains: 'contains', op_not_contains: 'does not contain', op_is: 'is', op_is_not: 'is not', op_in: 'is any of', op_not_in: 'is none of',
    op_empty: 'is empty', op_not_empty: 'is not empty', op_yes: 'is yes', op_no: 'is no', op_before: 'before', op_after: 'after', op_on: 'on',
    today: 'Today', week: 'This week', month: 'This month', last30: 'Last 30 days', next30: 'Next 30 days', me: 'Me',
  };
  let STR = {};
  try { STR = JSON.parse(root.dataset.i18n || '{}'); } catch (_) { /* keep defaults */ }
  const t = (k, n) => String(STR[k] || EN[k] || k).replace('{n}', n == null ? '' : n);
  const icon = id => `<svg class="icon" aria-hidden="true"><use href="${root.dataset.icons || '/ui/assets/icons.svg'}#i-${id}"/></svg>`;
  const csrf = () => { const m = $('meta[name="csrf-token"]'); return m ? m.content : ''; };
  const version = el => { const v = el && el.closest('[data-version]'); return v ? `"${v.dataset.version}"` : null; };
  const problem = (text, status) => {
    try { const j = JSON.parse(text); if (j.detail || j.title) return j.detail || j.title; } catch (_) { /* not JSON */ }
    return t('error', status);
  };

  // ---- progress bar: html.is-loading while any request runs ----
  let busy = 0;
  const setBusy = n => { busy = Math.max(0, busy + n); root.classList.toggle('is-loading', busy > 0); };
  d.addEventListener('htmx:beforeSend', () => setBusy(1));
  d.addEventListener('htmx:afterRequest', () => setBusy(-1));

  // ---- every non-GET htmx request: CSRF token, and If-Match from the closest [data-version] ----
  d.addEventListener('htmx:configRequest', e => {
    const dt = e.detail;
    if (dt.verb === 'get') return;
    dt.headers['X-CSRF-Token'] = csrf();
    const v = version(dt.elt);
    if (v && !dt.headers['If-Match']) dt.headers['If-Match'] = v;
  });
  // A successful write's ETag becomes the new data-version of what is still on the page.
  d.addEventListener('htmx:afterRequest', e => {
    const dt = e.detail, x = dt.xhr, tag = x && x.getResponseHeader('ETag');
    if (!tag || !dt.successful || dt.requestConfig.verb === 'get') return;
    const el = [dt.target, dt.elt].find(n => n && n.isConnected);
    const v = el && el.closest('[data-version]');
    if (v) v.dataset.version = tag.replace(/\W/g, '');
  });
  d.addEventListener('htmx:responseError', e => {
    const x = e.detail.xhr;
    if (!x.getResponseHeader('HX-Trigger')) toast(problem(x.responseText, x.status), 'error');
  });
  d.addEventListener('htmx:sendError', () => toast(t('network'), 'error'));

  // ---- toasts: HX-Trigger {"tessera:toast": {"message": "…", "kind": "ok|warn|error"}} ----
  function toast(message, kind = 'ok') {
    let box = $('#toasts');
    if (!box) { box = d.createElement('div'); box.id = 'toasts'; box.className = 'toasts'; d.body.append(box); }
    box.setAttribute('aria-live', 'polite');
    const el = d.createElement('div');
    el.className = 'toast ' + kind;
    el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    el.innerHTML = icon(kind === 'error' ? 'alert' : kind === 'warn' ? 'warning' : 'success') +
      `<p></p><button type="button" data-toast-close aria-label="${t('close')}">${icon('x')}</button>`;
    el.querySelector('p').textContent = message;
    box.append(el);
    autohide(el);
  }
  const dismiss = el => { el.classList.add('leaving'); setTimeout(() => el.remove(), 200); };
  const autohide = el => setTimeout(() => dismiss(el), el.classList.contains('error') ? 10000 : 5000);
  d.addEventListener('tessera:toast', e => toast(e.detail.message || e.detail.value, e.detail.kind));
  on('click', '[data-toast-close]', (e, b) => dismiss(b.closest('.toast')));
  window.tessera = { toast };

  // ---- keyboard shortcuts: Ctrl/⌘+K and / search; [data-key="n"] elements are clicked by their key ----
  const typing = el => el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  d.addEventListener('keydown', e => {
    if ((e.ctrlKey || e.metaKey) && (e.key || '').toLowerCase() === 'k') { e.preventDefault(); openSearch(); return; }
    if (e.key === 'Escape') { closeMenus(); const c = $('.nav-check'); if (c) c.checked = false; }
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented || typing(e.target) || $('dialog[open]')) return;
    if (e.key === '/') { e.preventDefault(); openSearch(); return; }
    const target = $$(`[data-key="${CSS.escape(e.key)}"]`).find(el => el.offsetParent);
    if (target) { e.preventDefault(); target.click(); }
  });

  // ---- global search palette: [data-search] holds the input (hx-get) and .palette results ----
  function openSearch() {
    const box = $('[data-search]');
    if (!box) return;
    box.closest('.topbar') && box.closest('.topbar').classList.add('search-open');
    const input = $('input', box);
    input.focus();
    input.select();
  }
  const palItems = box => $$('.pal-item', box);
  const palMove = (box, step) => {
    const items = palItems(box);
    if (!items.length) return;
    const i = items.findIndex(x => x.getAttribute('aria-selected') === 'true');
    const next = items[(i + step + items.length) % items.length];
    items.forEach(x => x.setAttribute('aria-selected', x === next));
    next.scrollIntoView({ block: 'nearest' });
  };
  const palOpen = (box, open) => {
    const p = $('.palette', box), input = $('input', box);
    if (p) p.classList.toggle('open', open);
    if (input) input.setAttribute('aria-expanded', open && !!(p && p.children.length));
    if (!open) box.closest('.topbar') && box.closest('.topbar').classList.remove('search-open');
  };
  on('focusin', '[data-search]', (e, box) => palOpen(box, true));
  on('focusout', '[data-search]', (e, box) => { if (!box.contains(e.relatedTarget)) palOpen(box, false); });
  on('keydown', '[data-search] input', (e, input) => {
    const box = input.closest('[data-search]');
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') { e.preventDefault(); palMove(box, e.key === 'ArrowDown' ? 1 : -1); }
    else if (e.key === 'Enter') {
      const sel = palItems(box).find(x => x.getAttribute('aria-selected') === 'true');
      if (sel) { e.preventDefault(); sel.click(); }
    } else if (e.key === 'Escape') {
      if (input.value) { input.value = ''; $('.palette', box).innerHTML = ''; }
      else { input.blur(); palOpen(box, false); }
    }
  });
  d.addEventListener('htmx:afterSwap', e => {
    const box = e.detail.target.closest('[data-search]');
    if (!box) return;
    const first = palItems(box)[0];
    if (first) first.setAttribute('aria-selected', 'true');
    palOpen(box, box.contains(d.activeElement));
  });

  // ---- menus (<details class="menu">) close on outside click; the phone nav closes on a link ----
  const closeMenus = except => $$('details.menu[open]').forEach(m => m !== except && !m.contains(except) && m.removeAttribute('open'));
  d.addEventListener('click', e => {
    closeMenus(e.target.closest('details.menu'));
    if (e.target.closest('.sidebar a')) { const c = $('.nav-check'); if (c) c.checked = false; }
  });
  on('click', '[data-search-open]', e => { e.preventDefault(); openSearch(); });
  // Remembers which sidebar groups are open (<details data-persist="id">).
  d.addEventListener('toggle', e => {
    const g = e.target;
    if (g.dataset && g.dataset.persist) try { localStorage.setItem('nav:' + g.dataset.persist, g.open ? '1' : '0'); } catch (_) { /* private mode */ }
  }, true);

  // ---- data grid: roving focus over cells, arrows/Tab move, Enter edits, Esc cancels ----
  const gridCell = el => el && el.closest && el.closest('table[data-grid] > tbody > tr > :is(td, th)');
  function focusCell(cell) {
    if (!cell) return false;
    const body = cell.closest('tbody');
    $$('[tabindex="0"]', body).forEach(c => c !== cell && c.matches('td, th') && c.removeAttribute('tabindex'));
    cell.tabIndex = 0;
    cell.focus();
    return true;
  }
  function stepCell(cell, dx, dy, wrap) {
    const row = cell.parentElement, rows = Array.from(row.parentElement.rows);
    let r = rows.indexOf(row), c = cell.cellIndex + dx;
    if (wrap && c >= row.cells.length) { r++; c = 1; }
    if (wrap && c < 1) { r--; c = rows[r] ? rows[r].cells.length - 1 : 0; }
    r += dy;
    const target = rows[r] && rows[r].cells[Math.max(0, Math.min(c, rows[r].cells.length - 1))];
    return target && target !== cell ? focusCell(target) : false;
  }
  on('keydown', 'table[data-grid] > tbody', e => {
    const cell = gridCell(e.target);
    if (!cell) return;
    if (cell.classList.contains('editing')) {
      if (e.key === 'Escape') { e.preventDefault(); cancelEdit(cell); }
      else if (e.key === 'Tab') { e.preventDefault(); saveEdit(cell, e.shiftKey ? -1 : 1); }
      return;
    }
    if (e.target !== cell) return;
    const k = e.key, moves = { ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowDown: [0, 1], ArrowUp: [0, -1] };
    if (moves[k]) { e.preventDefault(); stepCell(cell, moves[k][0], moves[k][1]); }
    else if (k === 'Tab') { if (stepCell(cell, e.shiftKey ? -1 : 1, 0, true)) e.preventDefault(); }
    else if (k === 'Home' || k === 'End') { e.preventDefault(); focusCell(k === 'Home' ? cell.parentElement.cells[0] : cell.parentElement.lastElementChild); }
    else if (k === 'Enter' || k === 'F2') {
      e.preventDefault();
      if (cell.dataset.editUrl) startEdit(cell);
      else { const a = $('a, input, button', cell); if (a) a.click(); }
    } else if (k === ' ') {
      const box = $('[data-select-row]', cell.parentElement);
      if (box) { e.preventDefault(); box.click(); }
    }
  });
  on('mousedown', 'table[data-grid] > tbody', e => { const c = gridCell(e.target); if (c && !c.classList.contains('editing')) setTimeout(() => focusCell(c)); });

  // ---- inline edit: [data-edit-url] loads an editor fragment; its form saves with hx-patch ----
  // What an edited element showed before, by row id and cell (a 422 swaps in a new element).
  const original = new Map();
  const editKey = el => { const row = el.closest('[data-id]'); return row ? `${row.dataset.id}:${el.cellIndex}:${el.dataset.editUrl}` : el; };
  let refocus = null; // {id, index, step}: where focus goes after the saved row is swapped in
  function startEdit(el) {
    if (!hx() || el.classList.contains('editing')) return;
    original.set(editKey(el), el.innerHTML);
    el.classList.add('editing');
    hx().ajax('GET', el.dataset.editUrl, { source: el, target: el, swap: 'innerHTML' }).then(() => {
      const f = $('input:not([type=hidden]), select, textarea', el);
      if (f) { f.focus(); if (f.select) f.select(); }
    });
  }
  function cancelEdit(el) {
    const key = editKey(el);
    if (!original.has(key)) return;
    el.innerHTML = original.get(key);
    original.delete(key);
    el.classList.remove('editing', 'cell-error');
    if (hx()) hx().process(el);
    el.tabIndex = 0;
    el.focus();
  }
  function saveEdit(el, step) {
    const form = $('form', el), row = el.closest('tr[data-id]');
    if (!form) return cancelEdit(el);
    if (row) refocus = { id: row.dataset.id, index: el.cellIndex, step: step || 0 };
    if (!changed(form)) { cancelEdit(el); if (step) stepCell(el, step, 0, true); return; }
    el.classList.add('saving');
    form.requestSubmit();
  }
  // Enter in an editor submits its form natively: remember the cell so focus returns to it.
  on('submit', 'form', (e, form) => {
    const cell = form.closest('.editing'), row = cell && cell.closest('tr[data-id]');
    if (row && !refocus) refocus = { id: row.dataset.id, index: cell.cellIndex, step: 0 };
  });
  const changed = form => $$('input, select, textarea', form).some(f =>
    f.type === 'checkbox' || f.type === 'radio' ? f.checked !== f.defaultChecked
      : f.tagName === 'SELECT' ? Array.from(f.options).some(o => o.selected !== o.defaultSelected) : f.value !== f.defaultValue);
  on('click', '[data-edit-url]', (e, el) => {
    if (el.closest('[data-grid]') || el.classList.contains('editing') || e.target.closest('a, button, input')) return;
    startEdit(el);
  });
  on('dblclick', '[data-grid] [data-edit-url]', (e, el) => startEdit(el));
  on('keydown', '[data-edit-url]:not(td)', (e, el) => {
    if (e.key === 'Escape' && el.classList.contains('editing')) { e.preventDefault(); cancelEdit(el); }
    else if (e.key === 'Enter' && e.target === el) { e.preventDefault(); startEdit(el); }
  });
  // Leaving an editor saves what was typed (never lose a keystroke), or cancels if nothing changed.
  on('focusout', '.editing', (e, el) => {
    if (el.contains(e.relatedTarget)) return;
    setTimeout(() => { if (el.isConnected && el.classList.contains('editing') && !el.contains(d.activeElement)) saveEdit(el); });
  });
  d.addEventListener('htmx:afterSettle', () => {
    if (!refocus) return;
    const row = $(`tr[data-id="${CSS.escape(refocus.id)}"]`);
    const cell = row && row.cells[refocus.index];
    if (cell && cell.classList.contains('editing')) { const f = $('input, select, textarea', cell); if (f) f.focus(); }
    else if (cell) { original.delete(editKey(cell)); focusCell(cell); if (refocus.step) stepCell(cell, refocus.step, 0, true); }
    refocus = null;
  });

  // ---- row selection and the bulk bar ([data-select-scope]) ----
  function syncSelection(scope) {
    const rows = $$('[data-select-row]', scope), n = rows.filter(r => r.checked).length;
    rows.forEach(r => { const tr = r.closest('tr'); if (tr) tr.setAttribute('aria-selected', r.checked); });
    const all = $('[data-select-all]', scope);
    if (all) { all.checked = n > 0 && n === rows.length; all.indeterminate = n > 0 && n < rows.length; }
    const matching = $('[data-all-matching]', scope), offer = $('[data-select-matching]', scope);
    if (matching && n < rows.length) matching.value = '';
    const total = matching && matching.value ? (offer && offer.dataset.total) || n : n;
    if (offer) offer.hidden = !(n === rows.length && matching && !matching.value);
    $$('[data-selected-count]', scope).forEach(el => { el.textContent = total; });
    $$('[data-bulk-bar]', scope).forEach(bar => { bar.hidden = n === 0; });
  }
  on('change', '[data-select-row], [data-select-all]', (e, box) => {
    const scope = box.closest('[data-select-scope]');
    if (!scope) return;
    if (box.matches('[data-select-all]')) $$('[data-select-row]', scope).forEach(r => { r.checked = box.checked; });
    syncSelection(scope);
  });
  on('click', '[data-select-matching]', (e, b) => {
    const scope = b.closest('[data-select-scope]'), m = $('[data-all-matching]', scope);
    if (m) m.value = '1';
    syncSelection(scope);
  });
  on('click', '[data-select-none]', (e, b) => {
    const scope = b.closest('[data-select-scope]');
    $$('[data-select-row]', scope).forEach(r => { r.checked = false; });
    syncSelection(scope);
  });

  // ---- kanban: Sortable drag between [data-column]s; PATCH the card's data-move-url ----
  let sortableLoading = null;
  function initBoard(board) {
    if (board.dataset.ready) return;
    if (!window.Sortable) {
      // Loads Sortable on first need (data-sortable-src), so pages without a board never pay for it.
      const src = board.dataset.sortableSrc;
      if (src && !sortableLoading) {
        sortableLoading = new Promise(res => { const s = d.createElement('script'); s.src = src; s.onload = res; d.head.append(s); });
      }
      if (sortableLoading) sortableLoading.then(() => initBoard(board));
      return;
    }
    board.dataset.ready = '1';
    $$('[data-column]', board).forEach(col => window.Sortable.create(col, {
      group: 'board', draggable: '[data-move-url]', animation: 150, delay: 150, delayOnTouchOnly: true,
      forceFallback: true, fallbackOnBody: true, fallbackTolerance: 4, // same drag on mouse and touch
      ghostClass: 'drop-ghost', chosenClass: 'chosen', fallbackClass: 'dragging', onEnd: ev => moveCard(board, ev),
    }));
  }
  // Cards are links, which the browser would drag natively; the Sortable fallback drags them instead.
  on('dragstart', '[data-board] [data-move-url]', e => e.preventDefault());
  // Keyboard: Alt+←/→ on a focused card moves it to the neighbouring column.
  on('keydown', '[data-board] [data-move-url]', (e, card) => {
    if (!e.altKey || (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight')) return;
    const board = card.closest('[data-board]'), cols = $$('[data-column]', board), from = card.parentElement;
    const to = cols[cols.indexOf(from) + (e.key === 'ArrowRight' ? 1 : -1)];
    if (!to) return;
    e.preventDefault();
    const oldIndex = Array.from(from.children).indexOf(card);
    to.prepend(card);
    moveCard(board, { item: card, from, to, oldIndex });
  });
  async function moveCard(board, ev) {
    const card = ev.item, from = ev.from, to = ev.to;
    if (from === to) return; // order inside a column is not stored
    const body = new URLSearchParams({ [board.dataset.field || 'stage']: to.dataset.column });
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded', 'X-CSRF-Token': csrf(), 'HX-Request': 'true' };
    if (card.dataset.version) headers['If-Match'] = `"${card.dataset.version}"`;
    let msg = null;
    card.classList.add('moving');
    setBusy(1);
    try {
      const r = await fetch(card.dataset.moveUrl, { method: 'PATCH', headers, body, credentials: 'same-origin' });
      if (r.ok) { const tag = r.headers.get('ETag'); if (tag) card.dataset.version = tag.replace(/\W/g, ''); }
      else {
        let trig = null;
        try { trig = JSON.parse(r.headers.get('HX-Trigger') || 'null'); } catch (_) { /* plain event name */ }
        msg = (trig && trig['tessera:toast'] && trig['tessera:toast'].message) || problem(await r.text(), r.status);
      }
    } catch (_) { msg = t('network'); }
    setBusy(-1);
    card.classList.remove('moving');
    if (msg != null) { from.insertBefore(card, from.children[ev.oldIndex] || null); toast(msg, 'error'); }
    else card.focus();
    [from, to].forEach(col => columnTotals(board, col));
  }
  // Recounts a column's [data-count] and sums its cards' data-amount into [data-sum].
  function columnTotals(board, col) {
    const box = col.closest('.col') || col, cards = $$('[data-move-url]', col);
    $$('[data-count]', box).forEach(el => { el.textContent = cards.length; });
    const sum = cards.reduce((s, c) => s + (parseFloat(c.dataset.amount) || 0), 0), scale = +(board.dataset.scale || 2);
    const fmt = new Intl.NumberFormat(root.lang || undefined, board.dataset.currency
      ? { style: 'currency', currency: board.dataset.currency, minimumFractionDigits: scale, maximumFractionDigits: scale } : {});
    $$('[data-sum]', box).forEach(el => { el.textContent = fmt.format(sum); });
  }

  // ---- unsaved changes: form[data-guard] ----
  const dirtyForm = () => $('form[data-guard][data-dirty]');
  on('input', 'form[data-guard]', (e, f) => { f.dataset.dirty = '1'; });
  on('change', 'form[data-guard]', (e, f) => { f.dataset.dirty = '1'; });
  on('submit', 'form[data-guard]', (e, f) => { delete f.dataset.dirty; });
  window.addEventListener('beforeunload', e => { if (dirtyForm()) { e.preventDefault(); e.returnValue = ''; } });
  d.addEventListener('htmx:beforeRequest', e => {
    const f = dirtyForm(), dt = e.detail;
    if (!f || f.contains(dt.elt) || !dt.target || !dt.target.contains(f)) return;
    if (window.confirm(t('unsaved'))) delete f.dataset.dirty; else e.preventDefault();
  });

  // ---- client-side checks: form[data-validate], messages under fields, summary on submit ----
  const KEYS = [['valueMissing', 'required'], ['typeMismatch', ''], ['patternMismatch', 'pattern'], ['tooShort', 'minlength'],
    ['tooLong', 'maxlength'], ['rangeUnderflow', 'min'], ['rangeOverflow', 'max'], ['stepMismatch', 'step'], ['badInput', 'bad']];
  function check(f) {
    if (!f.willValidate || !f.validity) return true;
    let msg = '';
    if (!f.validity.valid) {
      const hit = KEYS.find(([v]) => f.validity[v]);
      const key = hit ? hit[1] || f.type : 'invalid';
      msg = f.dataset['msg' + key.charAt(0).toUpperCase() + key.slice(1)] || f.dataset.msg ||
        (STR[key] || EN[key] ? t(key, f.getAttribute(key)) : f.validationMessage);
    }
    showError(f, msg);
    return !msg;
  }
  function showError(f, msg) {
    const field = f.closest('.field') || f.parentElement;
    let err = $('.error', field);
    if (!err && msg) {
      err = d.createElement('p');
      err.className = 'error';
      err.id = (f.id || f.name) + '-err';
      (f.nextElementSibling && f.nextElementSibling.matches('.help') ? f.nextElementSibling : f).after(err);
      f.setAttribute('aria-describedby', ((f.getAttribute('aria-describedby') || '') + ' ' + err.id).trim());
    }
    if (err) err.textContent = msg;
    field.classList.toggle('invalid', !!msg);
    if (msg) f.setAttribute('aria-invalid', 'true'); else f.removeAttribute('aria-invalid');
  }
  on('focusout', 'form[data-validate] :is(input, select, textarea)', (e, f) => { f.dataset.touched = '1'; check(f); });
  on('input', 'form[data-validate] :is(input, select, textarea)', (e, f) => { if (f.dataset.touched || f.getAttribute('aria-invalid')) check(f); });
  d.addEventListener('submit', e => {
    const form = e.target;
    if (!form.matches('form[data-validate]')) return;
    const bad = Array.from(form.elements).filter(f => f.matches('input, select, textarea') && f.willValidate && !check(f));
    if (!bad.length) return;
    e.preventDefault();
    e.stopImmediatePropagation(); // keeps htmx from sending it
    let sum = $('.error-summary', form);
    if (!sum) { sum = d.createElement('div'); sum.className = 'error-summary'; sum.setAttribute('role', 'alert'); sum.tabIndex = -1; form.prepend(sum); }
    sum.innerHTML = `<h2>${icon('alert')}<span></span></h2><ul></ul>`;
    $('h2 span', sum).textContent = t('summary', bad.length);
    bad.forEach(f => {
      const li = d.createElement('li'), a = d.createElement('a'), label = form.querySelector(`label[for="${CSS.escape(f.id)}"]`);
      a.href = '#' + f.id;
      const err = $('.error', f.closest('.field') || f.parentElement);
      a.textContent = (label ? label.textContent.replace('*', '').trim() + t('sep') : '') + (err ? err.textContent : f.validationMessage);
      li.append(a);
      $('ul', sum).append(li);
    });
    sum.focus();
  }, true);
  on('click', '.error-summary a[href^="#"]', (e, a) => {
    const f = d.getElementById(a.getAttribute('href').slice(1));
    if (f) { e.preventDefault(); f.focus(); }
  });

  // ---- confirmation dialog for hx-confirm (and form[data-confirm] without htmx) ----
  function confirmDialog(text, danger) {
    let dlg = $('#tessera-confirm');
    if (!dlg) {
      dlg = d.createElement('dialog');
      dlg.id = 'tessera-confirm';
      dlg.className = 'dialog';
      dlg.innerHTML = `<div class="dialog-head"><h2></h2></div><form method="dialog" class="dialog-foot"><button class="btn" value="">${t('cancel')}</button><button class="btn primary" value="ok">${t('confirm')}</button></form>`;
      d.body.append(dlg);
    }
    $('h2', dlg).textContent = text;
    $('[value=ok]', dlg).className = danger ? 'btn danger solid' : 'btn primary';
    dlg.returnValue = '';
    dlg.showModal();
    $('[value=ok]', dlg).focus();
    return new Promise(res => dlg.addEventListener('close', () => res(dlg.returnValue === 'ok'), { once: true }));
  }
  d.addEventListener('htmx:confirm', e => {
    if (!e.detail.question) return;
    e.preventDefault();
    confirmDialog(e.detail.question, e.detail.elt.matches('.danger')).then(ok => ok && e.detail.issueRequest(true));
  });
  on('submit', 'form[data-confirm]', (e, f) => {
    if (f.dataset.confirmed) { delete f.dataset.confirmed; return; }
    e.preventDefault();
    confirmDialog(f.dataset.confirm, true).then(ok => { if (ok) { f.dataset.confirmed = '1'; f.requestSubmit(); } });
  });
  on('click', '[data-dialog-open]', (e, b) => { const x = d.getElementById(b.dataset.dialogOpen); if (x) { e.preventDefault(); x.showModal(); } });
  on('click', '[data-dialog-close]', (e, b) => { const x = b.closest('dialog'); if (x) x.close(); });

  // ---- fragments by GET: htmx when present, fetch otherwise ----
  const load = (url, target) => hx() ? hx().ajax('GET', url, { source: target, target, swap: 'innerHTML' })
    : fetch(url, { headers: { 'HX-Request': 'true' }, credentials: 'same-origin' }).then(r => r.text()).then(h => { target.innerHTML = h; });

  // ---- typeahead: [data-typeahead] = hidden value input + text input[data-typeahead-url] + listbox ----
  let taTimer = 0;
  on('input', '[data-typeahead-url]', (e, input) => {
    const box = input.closest('[data-typeahead]'), list = $('[role=listbox]', box), hidden = $('[data-typeahead-value]', box);
    if (hidden && !input.value) hidden.value = '';
    clearTimeout(taTimer);
    taTimer = setTimeout(() => {
      const u = input.dataset.typeaheadUrl;
      load(u + (u.includes('?') ? '&' : '?') + 'q=' + encodeURIComponent(input.value), list)
        .then(() => { list.hidden = !list.children.length; input.setAttribute('aria-expanded', !list.hidden); });
    }, 150);
  });
  function pick(opt) {
    const box = opt.closest('[data-typeahead]'), input = $('[data-typeahead-url]', box), hidden = $('[data-typeahead-value]', box);
    if (hidden) { hidden.value = opt.dataset.value; hidden.dispatchEvent(new Event('change', { bubbles: true })); }
    input.value = opt.dataset.label || opt.textContent.trim();
    input.dataset.label = input.value;
    $('[role=listbox]', box).hidden = true;
    input.setAttribute('aria-expanded', 'false');
    input.focus();
  }
  on('click', '[data-typeahead] [role=option]', (e, opt) => { e.preventDefault(); pick(opt); });
  on('keydown', '[data-typeahead-url]', (e, input) => {
    const list = $('[role=listbox]', input.closest('[data-typeahead]')), opts = $$('[role=option]', list);
    if (list.hidden || !opts.length) return;
    const i = opts.findIndex(o => o.getAttribute('aria-selected') === 'true');
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const n = opts[(i + (e.key === 'ArrowDown' ? 1 : -1) + opts.length) % opts.length];
      opts.forEach(o => o.setAttribute('aria-selected', o === n));
    } else if (e.key === 'Enter' && i >= 0) { e.preventDefault(); pick(opts[i]); }
    else if (e.key === 'Escape') { e.stopPropagation(); list.hidden = true; }
  });

  // ---- date presets: [data-date-preset="today|week|month|last30|next30"] → [from, to) ----
  const iso = x => new Date(x.getTime() - x.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
  function presetRange(name, now = new Date()) {
    const y = now.getFullYear(), m = now.getMonth(), day = now.getDate(), dow = (now.getDay() + 6) % 7;
    const r = { today: [day, day + 1], week: [day - dow, day - dow + 7], last30: [day - 29, day + 1], next30: [day, day + 30] }[name];
    return r ? r.map(n => iso(new Date(y, m, n))) : name === 'month' ? [iso(new Date(y, m, 1)), iso(new Date(y, m + 1, 1))] : null;
  }
  on('click', '[data-date-preset]', (e, b) => {
    const box = b.closest('[data-date-range]');
    const r = presetRange(b.dataset.datePreset);
    if (!box || !r) return;
    const from = $('[data-date-from]', box), to = $('[data-date-to]', box);
    if (from) from.value = r[0];
    const [y, m, day] = r[1].split('-').map(Number);
    if (to) to.value = iso(new Date(y, m - 1, day - 1)); // a date input's end is inclusive
    $$('[data-date-preset]', box).forEach(x => x.setAttribute('aria-pressed', x === b));
  });

  // ---- filter chips: [data-filter] form, chips [data-expr], builder [data-filter-builder] ----
  const quote = v => JSON.stringify(String(v));
  const OPS = {
    text: [['~', 'op_contains'], ['!~', 'op_not_contains'], ['=', 'op_is'], ['!=', 'op_is_not'], ['= null', 'op_empty'], ['!= null', 'op_not_empty']],
    number: [['=', '='], ['!=', '≠'], ['>', '>'], ['>=', '≥'], ['<', '<'], ['<=', '≤'], ['= null', 'op_empty'], ['!= null', 'op_not_empty']],
    date: [['=', 'op_on'], ['<', 'op_before'], ['>', 'op_after'], ['= null', 'op_empty'], ['!= null', 'op_not_empty']],
    select: [['in', 'op_in'], ['!in', 'op_not_in'], ['= null', 'op_empty'], ['!= null', 'op_not_empty']],
    lookup: [['=', 'op_is'], ['!=', 'op_is_not'], ['= null', 'op_empty'], ['!= null', 'op_not_empty']],
    boolean: [['yes', 'op_yes'], ['no', 'op_no']],
  };
  const family = k => ({ integer: 'number', decimal: 'number', money: 'number', percent: 'number', datetime: 'date', multiselect: 'select', user: 'lookup', email: 'text', phone: 'text', url: 'text' }[k] || (OPS[k] ? k : 'text'));
  function applyFilter(form) {
    const exprs = $$('[data-expr]', form).map(c => c.dataset.expr).map(x => (/\|\||^!/.test(x) ? `(${x})` : x));
    $('[data-filter-input]', form).value = exprs.join(' && ');
    form.requestSubmit();
  }
  on('click', '[data-filter-remove]', (e, b) => { const form = b.closest('[data-filter]'); b.closest('[data-expr]').remove(); applyFilter(form); });
  on('input', '[data-fb-search]', (e, s) => {
    const q = s.value.trim().toLowerCase();
    $$('[data-field]', s.closest('[data-filter-builder]')).forEach(b => { b.hidden = q && !b.textContent.toLowerCase().includes(q); });
  });
  on('click', '[data-fb-fields] [data-field]', (e, fieldBtn) => {
    const fb = fieldBtn.closest('[data-filter-builder]'), ed = $('[data-fb-editor]', fb), kind = family(fieldBtn.dataset.kind);
    $('[data-fb-fields]', fb).hidden = true;
    ed.hidden = false;
    ed.dataset.fbField = fieldBtn.dataset.field;
    ed.dataset.fbKind = kind;
    ed.dataset.fbLabel = fieldBtn.textContent.trim();
    let opts = [];
    try { opts = JSON.parse(fieldBtn.dataset.options || '[]'); } catch (_) { /* none */ }
    const esc = s => String(s).replace(/[&<>"]/g, c => `&#${c.charCodeAt(0)};`);
    const value = {
      text: '<input class="input sm" data-fb-value>',
      number: '<input class="input sm" type="number" step="any" data-fb-value>',
      date: '<div class="presets">' + ['today', 'week', 'month', 'last30', 'next30'].map(p => `<button type="button" data-fb-preset="${p}">${t(p)}</button>`).join('') +
        `</div><input class="input sm" type="${fieldBtn.dataset.kind === 'datetime' ? 'datetime-local' : 'date'}" data-fb-value>`,
      select: '<div class="fb-fields">' + opts.map(([v, l, c]) => `<label class="opt"><input type="checkbox" value="${esc(v)}" data-label="${esc(l)}"><span class="chip${c ? ' c-' + esc(c) : ''}">${esc(l)}</span></label>`).join('') + '</div>',
      lookup: `<div class="typeahead" data-typeahead><input type="hidden" data-typeahead-value><input class="input sm" data-fb-value data-typeahead-url="${esc(fieldBtn.dataset.typeaheadUrl || '')}" autocomplete="off" role="combobox" aria-expanded="false"><div class="menu-list" role="listbox" hidden></div></div>` +
        (fieldBtn.dataset.kind === 'user' ? `<div class="presets"><button type="button" data-fb-me>${t('me')}</button></div>` : ''),
      boolean: '',
    }[kind];
    ed.innerHTML = `<div class="fb-head"><button type="button" class="btn ghost sm icon" data-fb-back aria-label="${t('back')}">${icon('chevron-left')}</button><span></span></div>` +
      `<select class="input sm" data-fb-op>${OPS[kind].map(([o, l]) => `<option value="${o}">${esc(t(l))}</option>`).join('')}</select>` +
      `<div class="fb-step">${value}</div><div class="fb-foot"><button type="button" class="btn sm" data-fb-back>${t('cancel')}</button><button type="button" class="btn sm primary" data-fb-apply>${t('apply')}</button></div>`;
    $('.fb-head span', ed).textContent = ed.dataset.fbLabel;
    const first = $('[data-fb-value], .fb-step input, [data-fb-op]', ed);
    if (first) first.focus();
  });
  on('click', '[data-fb-back]', (e, b) => {
    const fb = b.closest('[data-filter-builder]');
    $('[data-fb-editor]', fb).hidden = true;
    $('[data-fb-fields]', fb).hidden = false;
  });
  function addChip(fb, expr, text) {
    const form = fb.closest('[data-filter]'), chip = d.createElement('span');
    chip.className = 'fchip';
    chip.dataset.expr = expr;
    chip.innerHTML = `<span></span><button type="button" data-filter-remove aria-label="${t('close')}">${icon('x')}</button>`;
    chip.firstChild.textContent = text;
    fb.before(chip);
    fb.removeAttribute('open');
    applyFilter(form);
  }
  on('click', '[data-fb-preset]', (e, b) => {
    const ed = b.closest('[data-fb-editor]'), f = ed.dataset.fbField, p = b.dataset.fbPreset;
    const rel = { today: `${f} >= @today && ${f} < @today + 1d`, last30: `${f} >= @today - 29d && ${f} < @today + 1d`, next30: `${f} >= @today && ${f} < @today + 30d` }[p];
    const r = presetRange(p);
    addChip(b.closest('[data-filter-builder]'), rel || `${f} >= ${quote(r[0])} && ${f} < ${quote(r[1])}`, `${ed.dataset.fbLabel} ${t(p)}`);
  });
  on('click', '[data-fb-me]', (e, b) => {
    const ed = b.closest('[data-fb-editor]');
    addChip(b.closest('[data-filter-builder]'), `${ed.dataset.fbField} = @me`, `${ed.dataset.fbLabel} = ${t('me')}`);
  });
  on('click', '[data-fb-apply]', (e, b) => {
    const ed = b.closest('[data-fb-editor]'), f = ed.dataset.fbField, kind = ed.dataset.fbKind;
    const op = $('[data-fb-op]', ed).value, opText = $('[data-fb-op]', ed).selectedOptions[0].textContent, input = $('[data-fb-value]', ed);
    let expr, shown;
    if (op.endsWith('null')) { expr = `${f} ${op}`; shown = opText; }
    else if (kind === 'boolean') { expr = op === 'yes' ? f : `!${f}`; shown = opText; }
    else if (kind === 'select') {
      const picked = $$('input[type=checkbox]:checked', ed);
      if (!picked.length) return;
      const list = `[${picked.map(c => quote(c.value)).join(', ')}]`;
      expr = op === 'in' ? `${f} in ${list}` : `!(${f} in ${list})`;
      shown = `${opText} ${picked.map(c => c.dataset.label).join('、')}`;
    } else {
      const hidden = $('[data-typeahead-value]', ed), raw = kind === 'lookup' ? hidden && hidden.value : input && input.value.trim();
      if (!raw) { if (input) input.focus(); return; }
      expr = `${f} ${op} ${kind === 'number' ? Number(raw) : quote(raw)}`;
      shown = `${opText} ${kind === 'lookup' ? input.value : raw}`;
    }
    addChip(b.closest('[data-filter-builder]'), expr, `${ed.dataset.fbLabel} ${shown}`);
  });
  on('keydown', '[data-fb-editor] [data-fb-value]', (e, input) => {
    if (e.key === 'Enter' && !input.closest('[data-typeahead]')) { e.preventDefault(); $('[data-fb-apply]', input.closest('[data-fb-editor]')).click(); }
  });

  // ---- boot: run on the first page and on every fragment htmx swaps in ----
  function boot(el) {
    $$('table[data-grid] > tbody', el).forEach(body => {
      if (!$('[tabindex="0"]', body)) { const c = body.rows[0] && (body.rows[0].cells[1] || body.rows[0].cells[0]); if (c) c.tabIndex = 0; }
    });
    $$('form[data-validate]', el).forEach(f => { f.noValidate = true; });
    $$('[data-select-scope]', el).forEach(syncSelection);
    $$('[data-board]', el).forEach(initBoard);
    $$('.toast', el).forEach(autohide);
    $$('dialog[data-open]', el).forEach(x => { if (!x.open) x.showModal(); });
    $$('details[data-persist]', el).forEach(g => {
      try { const v = localStorage.getItem('nav:' + g.dataset.persist); if (v) g.open = v === '1'; } catch (_) { /* private mode */ }
    });
    const sum = el.matches && el.matches('.error-summary') ? el : $('.error-summary', el);
    if (sum) sum.focus();
  }
  d.addEventListener('htmx:load', e => { if (e.detail.elt !== d.body) boot(e.detail.elt); });
  // Deferred scripts run before DOMContentLoaded, so waiting for it lets later ones (Sortable) load first.
  if (d.readyState === 'complete') boot(d.body); else d.addEventListener('DOMContentLoaded', () => boot(d.body));
})();
